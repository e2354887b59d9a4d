//! The pipeline's errors: one line each, naming the bad value and what is allowed.

use std::path::PathBuf;

/// Everything a stage of the pipeline can refuse or fail with.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A data-set error (CSV, mixture, standardisation).
    #[error(transparent)]
    Data(#[from] toy_data::DataError),
    /// A network, training or checkpoint error.
    #[error(transparent)]
    Model(#[from] models::ModelError),
    /// A noise-schedule error.
    #[error(transparent)]
    Schedule(#[from] schedule::ScheduleError),
    /// A sampling error.
    #[error(transparent)]
    Sampler(#[from] sampler::SamplerError),
    /// A figure or file-writing error.
    #[error(transparent)]
    Viz(#[from] viz::VizError),
    /// A tensor operation failed.
    #[error("tensor operation failed: {0}")]
    Candle(#[from] candle_core::Error),
    /// What the pipeline was doing when a deeper error happened ("training the denoiser").
    #[error("{context}")]
    Context {
        /// What was being done.
        context: String,
        /// The error it met.
        #[source]
        source: Box<PipelineError>,
    },
    /// A file could not be read or removed.
    #[error("{what} '{}'", path.display())]
    Io {
        /// "cannot read", "removing", …
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON value could not be written.
    #[error("writing JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The output path exists and is a file.
    #[error("output path '{}' is a file: --out must be a folder (it is created if missing)", .0.display())]
    OutIsFile(PathBuf),
    /// The output folder sits below a file.
    #[error("output folder '{}' cannot be created: '{}' is a file, not a folder", out.display(), file.display())]
    OutBelowFile {
        /// The requested output folder.
        out: PathBuf,
        /// Its ancestor that is a file.
        file: PathBuf,
    },
    /// A recipe field out of range (see [`crate::RecipeError`]).
    #[error(transparent)]
    Recipe(#[from] crate::recipe::RecipeError),
    /// The data has fewer rows than one batch.
    #[error("the data has {rows} row(s) but training needs at least {min} (one batch): add rows or lower --batch")]
    TooFewRows {
        /// Rows in the data.
        rows: usize,
        /// Rows needed.
        min: usize,
    },
    /// A file of a checkpoint folder is missing.
    #[error("{}", missing_message(path, *checkpoint))]
    MissingCheckpointFile {
        /// The missing file.
        path: PathBuf,
        /// True for a network file ("checkpoint '…' not found").
        checkpoint: bool,
    },
    /// A checkpoint folder written before checkpoints carried a run id.
    #[error("'{}' has no {file}: the folder was written by a toydiff from before run ids; retrain with `cargo xtask train`", dir.display())]
    NoRecipe {
        /// The checkpoint folder.
        dir: PathBuf,
        /// The missing file (recipe.json) or field.
        file: String,
    },
    /// A file of a checkpoint folder that is not what it should be.
    #[error("{0}")]
    BadCheckpointFile(String),
    /// Two files of one checkpoint folder come from different runs.
    #[error("the checkpoint folder {} mixes two runs: {first} has run id {first_id} but {second} has run id {second_id}; retrain with `cargo xtask train`", dir.display())]
    MixedRuns {
        /// The checkpoint folder.
        dir: PathBuf,
        /// The file whose run id the others must match.
        first: String,
        /// Its run id.
        first_id: String,
        /// The file that differs.
        second: String,
        /// Its run id.
        second_id: String,
    },
    /// A class name the classifier does not have, or classes asked of unlabelled data.
    #[error("{0}")]
    BadClasses(String),
    /// A sampler, step count or η that cannot run (names the value and what is allowed).
    #[error("{0}")]
    BadSampler(String),
    /// A guidance setting that cannot run (names the value and what is allowed), or free
    /// guidance asked of a folder without a conditional denoiser.
    #[error("{0}")]
    BadGuidance(String),
    /// A `--data` column request that cannot work.
    #[error("{0}")]
    BadColumns(String),
}

fn missing_message(path: &std::path::Path, checkpoint: bool) -> String {
    if checkpoint {
        format!(
            "checkpoint '{}' not found: run `cargo xtask train` first, or pass --checkpoints DIR",
            path.display()
        )
    } else {
        format!(
            "cannot read '{}': run `cargo xtask train` first, or pass --checkpoints DIR",
            path.display()
        )
    }
}

impl PipelineError {
    /// This error under `context` ("training the denoiser: …").
    pub fn context(self, context: impl Into<String>) -> Self {
        PipelineError::Context {
            context: context.into(),
            source: Box::new(self),
        }
    }
}

/// `Result` with [`PipelineError`].
pub type Result<T, E = PipelineError> = std::result::Result<T, E>;

/// Adds context to any error that converts to [`PipelineError`].
pub(crate) trait Context<T> {
    fn context(self, context: impl Into<String>) -> Result<T>;
    fn with_context<S: Into<String>>(self, f: impl FnOnce() -> S) -> Result<T>;
}

impl<T, E: Into<PipelineError>> Context<T> for std::result::Result<T, E> {
    fn context(self, context: impl Into<String>) -> Result<T> {
        self.map_err(|e| e.into().context(context))
    }
    fn with_context<S: Into<String>>(self, f: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|e| e.into().context(f()))
    }
}
