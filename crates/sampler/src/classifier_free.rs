//! Classifier-free guidance (Ho & Salimans 2022): a conditional noise model mixed with
//! its unconditional self, ε̂(x_t, t) = (1 + w) ε(x_t, t, y) − w ε(x_t, t, ∅).
//!
//! [`ClassifierFreeGuidance`] is a [`NoisePredictor`]: every sampler (DDPM's [`crate::sample`]
//! and the solvers of [`crate::solvers`]) runs it unchanged, as it runs an unguided
//! denoiser. Classifier guidance stays a [`crate::GuidanceGradient`] beside it. With exact
//! scores the two meet: ε*(x, t, y) = ε*(x, t) − √(1 − ᾱ_t) ∇ log p(y | x_t), so
//! ε̂ = ε*(x, t) − (1 + w) √(1 − ᾱ_t) ∇ log p(y | x_t): classifier-free guidance with
//! weight w is classifier guidance with scale 1 + w applied through ε (in DDPM's step the
//! two differ by the factor 1/√α_t ≤ 1.01 on the shift).

use candle_core::Tensor;
use models::{ConditionalNoisePredictor, NoisePredictor};

use crate::SamplerError;

/// ε̂ = (1 + w) ε(x_t, t, y_i) − w ε(x_t, t, ∅) for sample i and its target class y_i
/// (Ho & Salimans 2022, eq. 6), as a noise predictor for any sampler.
pub struct ClassifierFreeGuidance<'a> {
    model: &'a dyn ConditionalNoisePredictor,
    targets: Vec<u32>,
    weight: f64,
}

impl<'a> ClassifierFreeGuidance<'a> {
    /// Guidance towards `targets[i]` for sample i with weight w (finite, ≥ 0; w = 0 is the
    /// conditional model alone). A run must have `targets.len()` samples.
    pub fn new(
        model: &'a dyn ConditionalNoisePredictor,
        targets: Vec<u32>,
        weight: f64,
    ) -> Result<Self, SamplerError> {
        if !(weight.is_finite() && weight >= 0.0) {
            return Err(SamplerError::InvalidScale(weight));
        }
        let c = model.num_classes();
        if let Some(&class) = targets.iter().find(|&&y| y as usize >= c) {
            return Err(SamplerError::InvalidTarget {
                class,
                num_classes: c,
            });
        }
        Ok(Self {
            model,
            targets,
            weight,
        })
    }

    /// Every one of `num_samples` samples guided towards `class`.
    pub fn one_class(
        model: &'a dyn ConditionalNoisePredictor,
        class: u32,
        weight: f64,
        num_samples: usize,
    ) -> Result<Self, SamplerError> {
        Self::new(model, vec![class; num_samples], weight)
    }

    /// w, the guidance weight.
    pub fn weight(&self) -> f64 {
        self.weight
    }

    /// The target class of each sample.
    pub fn targets(&self) -> &[u32] {
        &self.targets
    }
}

impl NoisePredictor for ClassifierFreeGuidance<'_> {
    fn num_steps(&self) -> usize {
        self.model.num_steps()
    }

    fn dim(&self) -> usize {
        self.model.dim()
    }

    /// (1 + w) ε_c − w ε_u with the coefficients rounded to x_t's dtype once (candle's
    /// `affine`); at w = 0 the conditional prediction itself, bit for bit, and the
    /// unconditional one is not computed.
    fn predict_noise(&self, x_t: &Tensor, t: usize) -> candle_core::Result<Tensor> {
        self.mix(x_t, t, &self.targets)
    }

    /// The same for samples `rows` only (a chunk of the run's batch), towards their targets.
    fn predict_noise_rows(
        &self,
        x_rows: &Tensor,
        t: usize,
        rows: std::ops::Range<usize>,
    ) -> candle_core::Result<Tensor> {
        let n = self.targets.len();
        match self.targets.get(rows.clone()) {
            Some(targets) => self.mix(x_rows, t, targets),
            None => candle_core::bail!(
                "classifier-free guidance has {n} targets; rows {rows:?} asked for"
            ),
        }
    }
}

impl ClassifierFreeGuidance<'_> {
    /// (1 + w) ε_c − w ε_u for x_t towards `targets` (one a row).
    fn mix(&self, x_t: &Tensor, t: usize, targets: &[u32]) -> candle_core::Result<Tensor> {
        if self.weight == 0.0 {
            return self.model.predict_noise_conditional(x_t, t, Some(targets));
        }
        let (conditional, unconditional) = self.model.predict_noise_pair(x_t, t, targets)?;
        conditional.affine(1.0 + self.weight, 0.0)? - unconditional.affine(self.weight, 0.0)?
    }
}
