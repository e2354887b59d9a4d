//! The crate's error type: one variant per thing that can be wrong.

/// Everything that can go wrong building, training, loading or evaluating a model.
///
/// Configuration checks have one variant each (the linfa convention), so a caller can
/// match on exactly what was rejected; checkpoint errors name the tensor or key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// An error from a candle tensor operation.
    #[error("tensor operation failed: {0}")]
    Candle(#[from] candle_core::Error),

    // ----- network configuration -----
    /// The data dimension d must be at least 1.
    #[error("data dimension must be at least 1")]
    ZeroDim,
    /// A hidden layer of width 0.
    #[error("hidden layer {layer} has width 0: every hidden layer needs at least one unit")]
    ZeroHiddenWidth {
        /// 0-based index of the hidden layer.
        layer: usize,
    },
    /// The number of diffusion steps T must be at least 1.
    #[error("number of diffusion steps T must be at least 1")]
    ZeroNumSteps,
    /// A classifier needs at least two classes.
    #[error("a classifier needs at least 2 classes, got {0}")]
    TooFewClasses(usize),
    /// The classifier's time embedding needs at least one feature.
    #[error("the time embedding dimension must be at least 1")]
    ZeroEmbedDim,

    // ----- training configuration and data -----
    /// Training needs at least one optimisation step (or epoch).
    #[error("the number of training {what} must be at least 1")]
    ZeroSteps {
        /// "steps" or "epochs".
        what: &'static str,
    },
    /// The label dropout of classifier-free guidance must be in (0, 1).
    #[error("label dropout {0} is invalid: use a probability strictly between 0 and 1")]
    InvalidLabelDropout(f64),
    /// The batch size must be at least 1.
    #[error("batch size must be at least 1")]
    ZeroBatchSize,
    /// The learning rate must be finite and positive.
    #[error("learning rate {0} is invalid: it must be finite and > 0")]
    InvalidLearningRate(f64),
    /// No training or evaluation points were given.
    #[error("the data set is empty")]
    EmptyData,
    /// A flat row-major buffer whose length is not a multiple of the dimension.
    #[error("data has {len} values, which is not a multiple of the dimension {dim}")]
    DataNotMultipleOfDim {
        /// Number of values in the buffer.
        len: usize,
        /// The dimension d.
        dim: usize,
    },
    /// A NaN or infinite coordinate in the data (candle's relu maps NaN to 0, so it would train silently).
    #[error("data point {point} has a non-finite coordinate {coordinate}: {value}")]
    NonFiniteData {
        /// 0-based index of the point.
        point: usize,
        /// 0-based coordinate.
        coordinate: usize,
        /// The value found.
        value: f32,
    },
    /// Two dimensions that must agree do not.
    #[error("dimension mismatch: {what} is {found}, expected {expected}")]
    DimMismatch {
        /// What was compared.
        what: &'static str,
        /// The dimension found.
        found: usize,
        /// The dimension required.
        expected: usize,
    },
    /// The number of labels differs from the number of points.
    #[error("{labels} labels were given for {points} points")]
    LabelCountMismatch {
        /// Number of points.
        points: usize,
        /// Number of labels.
        labels: usize,
    },
    /// A label that is not a valid class index.
    #[error("label {label} at index {index} is out of range: the model has {num_classes} classes")]
    LabelOutOfRange {
        /// Position of the label.
        index: usize,
        /// The label.
        label: u32,
        /// Number of classes of the model.
        num_classes: usize,
    },
    /// The schedule and the model disagree about T.
    #[error("the schedule has T = {schedule} steps but the model has T = {model}")]
    NumStepsMismatch {
        /// T of the schedule.
        schedule: usize,
        /// T of the model.
        model: usize,
    },
    /// A time step outside 1..=T.
    #[error("time step t = {t} is outside 1..={num_steps}")]
    StepOutOfRange {
        /// The step asked for.
        t: usize,
        /// T.
        num_steps: usize,
    },
    /// A Monte Carlo estimate or test set asked for zero draws.
    #[error("the number of draws must be at least 1")]
    ZeroDraws,
    /// Training produced a loss that is NaN or infinite.
    #[error(
        "training diverged at step {step}: the loss became non-finite (last finite loss: {})",
        match last_finite_loss { Some(l) if l.abs() < 1e6 => format!("{l}"), Some(l) => format!("{l:e}"), None => "none, it was the first step".to_string() }
    )]
    Diverged {
        /// 1-based optimisation step whose loss was not finite.
        step: usize,
        /// The loss of the step before, if there was one.
        last_finite_loss: Option<f32>,
    },

    // ----- checkpoints -----
    /// The bytes are not a readable safetensors file (truncated, garbage, bad header).
    #[error("not a readable safetensors checkpoint: {0}")]
    CheckpointUnreadable(String),
    /// The `format` metadata entry is missing or names another kind of file.
    #[error("checkpoint format is {}, expected \"{expected}\"", match found { Some(f) => format!("\"{f}\""), None => "missing".to_string() })]
    CheckpointFormat {
        /// The format found, if any.
        found: Option<String>,
        /// The format this loader reads.
        expected: &'static str,
    },
    /// A metadata entry is missing.
    #[error("checkpoint metadata lacks the key \"{0}\"")]
    MissingMetadata(&'static str),
    /// A metadata entry could not be parsed.
    #[error("checkpoint metadata \"{key}\" = \"{value}\" is invalid: {reason}")]
    BadMetadata {
        /// The key.
        key: &'static str,
        /// Its value.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The checkpoint was trained with another T than the caller expects.
    #[error("checkpoint was trained with T = {found}, expected {expected}")]
    CheckpointNumSteps {
        /// T recorded in the checkpoint.
        found: usize,
        /// T the caller expects.
        expected: usize,
    },
    /// A tensor the architecture needs is absent.
    #[error("checkpoint lacks the tensor {0}")]
    MissingTensor(String),
    /// A tensor that the architecture does not have.
    #[error("checkpoint has an unexpected tensor {0}")]
    UnexpectedTensor(String),
    /// A tensor of the wrong shape.
    #[error("{name} has shape {found:?}, expected {expected:?}")]
    TensorShape {
        /// Tensor name.
        name: String,
        /// Shape in the file.
        found: Vec<usize>,
        /// Shape the configuration implies.
        expected: Vec<usize>,
    },
    /// A tensor of the wrong dtype.
    #[error("{name} has dtype {found}, expected F32")]
    TensorDtype {
        /// Tensor name.
        name: String,
        /// Dtype in the file.
        found: String,
    },

    // ----- exact references -----
    /// A mixture covariance that is not positive definite after noising.
    #[error("covariance of component {component} at t = {t} is not positive definite")]
    NotPositiveDefinite {
        /// Component index.
        component: usize,
        /// Time step (0 for the clean data).
        t: usize,
    },
    /// A component → class map that does not fit the mixture.
    #[error("invalid component-to-class map: {0}")]
    InvalidClassMap(String),
    /// The closed form needs two equal-weight isotropic components with the same variance.
    #[error("the closed-form Bayes accuracy needs two equal-weight components with the same isotropic covariance: {0}")]
    NotTwoEqualIsotropic(String),
}

/// Shorthand for results of this crate.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;
