//! DDPM reverse sampling (Ho et al. 2020), unguided or with classifier guidance
//! (Dhariwal & Nichol 2021), over the model traits of the `models` crate, so the same
//! loop runs with trained candle networks or with the exact Gaussian-mixture references.
//!
//! One reverse step, for t = T..1 (`σ_t² = β_t` as in the notebook, or β̃_t):
//!
//! - mean = (x_t − β_t/√(1 − ᾱ_t) · ε(x_t, t)) / √α_t
//! - guided: mean += s · σ_t² · ∇_x log p(y | x_t, t)
//! - x_{t−1} = mean + σ_t z, z ~ N(0, I), except at t = 1 where x_0 = mean.
//!
//! The guidance gradient comes from candle's autograd in one backward pass over the whole
//! batch ([`models::NoisyClassifier::grad_log_prob`]); every sample may have its own
//! target class. All noise is drawn on the host from one seeded RNG: the same seed gives
//! the same samples, bit for bit. Each step's x_t is detached, so memory does not grow
//! with T beyond the snapshots kept.
//!
//! [`metrics`] holds the sample-quality measures (energy distance, mode balance,
//! per-mode moments, guided precision).
//!
//! # Example
//!
//! Guided sampling from the exact model of the notebook's two clusters (no training):
//!
//! ```
//! use models::ExactMixture;
//! use sampler::{sample, Guidance, SamplerConfig};
//! use schedule::NoiseSchedule;
//!
//! let schedule = NoiseSchedule::notebook();
//! let exact = ExactMixture::new(&toy_data::two_clusters_mixture(), &schedule)?;
//! let (denoiser, classifier) = (exact.denoiser(), exact.classifier());
//! let config = SamplerConfig { num_samples: 50, seed: 7, ..SamplerConfig::default() };
//! let guidance = Guidance::one_class(&classifier, 1, 30.0, config.num_samples);
//! let run = sample(&denoiser, &schedule, Some(&guidance), &config)?;
//! let last = run.final_points();
//! // Every sample lands in the cluster at (2, 2).
//! assert!(last.chunks(2).all(|p| p[0] > 0.0 && p[1] > 0.0));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod metrics;

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
    /// σ_t² of each step.
    pub variance: ReverseVariance,
    /// Seed of x_T and every z.
    pub seed: u64,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        Self {
            num_samples: 500,
            snapshot_every: 10,
            variance: ReverseVariance::Beta,
            seed: 1234,
        }
    }
}

/// Classifier guidance: a noisy classifier, one target class per sample, and the scale s.
pub struct Guidance<'a> {
    /// p(y | x_t, t); use a detached network for speed.
    pub classifier: &'a dyn NoisyClassifier,
    /// Target class of each sample.
    pub targets: Vec<u32>,
    /// s: the guidance term is s · σ_t² · ∇ log p(y | x_t, t) (the notebook: 30).
    pub scale: f64,
}

impl<'a> Guidance<'a> {
    /// Every one of `num_samples` samples guided towards `class`.
    pub fn one_class(
        classifier: &'a dyn NoisyClassifier,
        class: u32,
        scale: f64,
        num_samples: usize,
    ) -> Self {
        Self {
            classifier,
            targets: vec![class; num_samples],
            scale,
        }
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

/// The snapshots of one reverse run, from x_T to x_0.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleRun {
    /// d, the data dimension.
    pub dim: usize,
    /// In order of decreasing t; the last is x_0.
    pub snapshots: Vec<Snapshot>,
}

impl SampleRun {
    /// The final samples x_0, n × d row-major.
    pub fn final_points(&self) -> &[f32] {
        &self
            .snapshots
            .last()
            .expect("a run always holds x_T and x_0")
            .points
    }
}

/// (x_t − β_t/√(1 − ᾱ_t) · ε)/√α_t: the mean of p(x_{t−1} | x_t) given the predicted noise ε.
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

fn validate(
    denoiser: &dyn NoisePredictor,
    schedule: &NoiseSchedule,
    guidance: Option<&Guidance>,
    config: &SamplerConfig,
) -> Result<(), SamplerError> {
    if config.num_samples == 0 {
        return Err(SamplerError::InvalidNumSamples(0));
    }
    if config.snapshot_every == 0 {
        return Err(SamplerError::InvalidSnapshotInterval(0));
    }
    if denoiser.num_steps() != schedule.num_steps() {
        return Err(SamplerError::StepMismatch {
            what: "denoiser",
            model: denoiser.num_steps(),
            schedule: schedule.num_steps(),
        });
    }
    if let Some(g) = guidance {
        if !(g.scale.is_finite() && g.scale >= 0.0) {
            return Err(SamplerError::InvalidScale(g.scale));
        }
        if g.classifier.num_steps() != schedule.num_steps() {
            return Err(SamplerError::StepMismatch {
                what: "classifier",
                model: g.classifier.num_steps(),
                schedule: schedule.num_steps(),
            });
        }
        if g.targets.len() != config.num_samples {
            return Err(SamplerError::TargetCount {
                targets: g.targets.len(),
                samples: config.num_samples,
            });
        }
        let c = g.classifier.num_classes();
        if let Some(&class) = g.targets.iter().find(|&&y| y as usize >= c) {
            return Err(SamplerError::InvalidTarget {
                class,
                num_classes: c,
            });
        }
    }
    Ok(())
}

/// `len` draws of N(0, scale²), drawn in f64 and rounded to f32.
fn normal_values(rng: &mut StdRng, len: usize, scale: f64) -> Vec<f32> {
    (0..len)
        .map(|_| (scale * rng.sample::<f64, _>(StandardNormal)) as f32)
        .collect()
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

/// Runs the reverse process from x_T ~ N(0, I) to x_0, keeping snapshots.
///
/// Snapshots: x_T, then the state after every step t with t % `snapshot_every` == 0,
/// and x_0. A snapshot's `t` is the index of the state it holds (x_{t}).
pub fn sample(
    denoiser: &dyn NoisePredictor,
    schedule: &NoiseSchedule,
    guidance: Option<&Guidance>,
    config: &SamplerConfig,
) -> Result<SampleRun, SamplerError> {
    sample_with(denoiser, schedule, guidance, config, None, &mut |_| {})
}

/// [`sample`], calling `on_step(t)` after each reverse step t = T, …, 1 (for a progress
/// bar): the same draws, the same bits.
pub fn sample_observed(
    denoiser: &dyn NoisePredictor,
    schedule: &NoiseSchedule,
    guidance: Option<&Guidance>,
    config: &SamplerConfig,
    on_step: &mut dyn FnMut(usize),
) -> Result<SampleRun, SamplerError> {
    sample_with(denoiser, schedule, guidance, config, None, on_step)
}

/// [`sample`], with the noise drawn on a second thread (`Some(true)`), on this one
/// (`Some(false)`) or as the machine allows (`None`): the same draws, the same bits.
fn sample_with(
    denoiser: &dyn NoisePredictor,
    schedule: &NoiseSchedule,
    guidance: Option<&Guidance>,
    config: &SamplerConfig,
    noise_thread: Option<bool>,
    on_step: &mut dyn FnMut(usize),
) -> Result<SampleRun, SamplerError> {
    validate(denoiser, schedule, guidance, config)?;
    let (n, d) = (config.num_samples, denoiser.dim());
    let num_steps = schedule.num_steps();
    let mut rng = StdRng::seed_from_u64(config.seed);
    let targets = match guidance {
        Some(g) => Some(Tensor::from_vec(g.targets.clone(), n, &Device::Cpu)?),
        None => None,
    };

    // x lives on the host: each step reads ε (and the guidance gradient) once and updates
    // x in one loop, with the same f32 operations, in the same order, as the tensor
    // formulas (`posterior_mean`, candle's `affine`: v · m + a), so the same bits.
    let mut x = normal_values(&mut rng, n * d, 1.0);
    let mut snapshots = vec![Snapshot {
        t: num_steps,
        points: x.clone(),
    }];
    // The noise z of steps T..2, drawn in this order from the same RNG: on a second
    // thread when there is a second core (drawing 1,000 normals cost about 5–9 µs of a
    // 140 µs step), else here.
    let sd = |t: usize| config.variance.variance(schedule, t).sqrt();
    let parallel = match noise_thread {
        Some(p) => p,
        None => std::thread::available_parallelism().is_ok_and(|p| p.get() > 1),
    } && num_steps > 1;
    std::thread::scope(|scope| -> Result<(), SamplerError> {
        let mut noise: Box<dyn FnMut(usize) -> Vec<f32>> = if parallel {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<f32>>(8);
            let mut rng = rng.clone();
            scope.spawn(move || {
                for t in (2..=num_steps).rev() {
                    // A closed channel: sampling stopped early (an error).
                    if tx.send(normal_values(&mut rng, n * d, sd(t))).is_err() {
                        return;
                    }
                }
            });
            Box::new(move |_| rx.recv().expect("the noise thread draws every step"))
        } else {
            Box::new(|t| normal_values(&mut rng, n * d, sd(t)))
        };
        for t in (1..=num_steps).rev() {
            let x_t = Tensor::from_slice(&x, (n, d), &Device::Cpu)?;
            // 1. predicted noise ε(x_t, t) and the mean of p(x_{t−1} | x_t).
            let eps = host(&denoiser.predict_noise(&x_t, t)?, n * d)?;
            let eps_coef = (schedule.beta(t) / schedule.sqrt_one_minus_alpha_bar(t)) as f32;
            let inv_sqrt_alpha = (1.0 / schedule.alpha(t).sqrt()) as f32;
            let variance = config.variance.variance(schedule, t);
            let mut mean: Vec<f32> = x
                .iter()
                .zip(&eps)
                .map(|(&x, &e)| (x - (e * eps_coef + 0.0)) * inv_sqrt_alpha + 0.0)
                .collect();
            // 2. classifier guidance: mean += s σ_t² ∇ log p(y | x_t, t), one backward pass.
            if let (Some(g), Some(targets)) = (guidance, &targets) {
                if g.scale > 0.0 {
                    let grad = host(&g.classifier.grad_log_prob(&x_t, t, targets)?, n * d)?;
                    let k = (g.scale * variance) as f32;
                    for (m, &gr) in mean.iter_mut().zip(&grad) {
                        *m += gr * k + 0.0;
                    }
                }
            }
            // 3. x_{t−1} = mean + σ_t z, except at t = 1.
            if t > 1 {
                for (m, z) in mean.iter_mut().zip(noise(t)) {
                    *m += z;
                }
            }
            x = mean;
            if x.iter().any(|v| !v.is_finite()) {
                return Err(SamplerError::NonFinite { t });
            }
            if t % config.snapshot_every == 0 || t == 1 {
                snapshots.push(Snapshot {
                    t: t - 1,
                    points: x.clone(),
                });
            }
            on_step(t);
        }
        Ok(())
    })?;
    Ok(SampleRun { dim: d, snapshots })
}

#[cfg(test)]
mod tests {
    use super::*;
    use models::ExactMixture;

    fn exact() -> (NoiseSchedule, ExactMixture) {
        let schedule = NoiseSchedule::notebook();
        let exact = ExactMixture::new(&toy_data::two_clusters_mixture(), &schedule).unwrap();
        (schedule, exact)
    }

    #[test]
    fn same_seed_same_bits_and_snapshot_times() {
        let (schedule, exact) = exact();
        let (den, clf) = (exact.denoiser(), exact.classifier());
        let config = SamplerConfig {
            num_samples: 20,
            ..SamplerConfig::default()
        };
        let g = Guidance::one_class(&clf, 0, 30.0, 20);
        let a = sample(&den, &schedule, Some(&g), &config).unwrap();
        let b = sample(&den, &schedule, Some(&g), &config).unwrap();
        assert_eq!(a, b);
        let ts: Vec<usize> = a.snapshots.iter().map(|s| s.t).collect();
        // x_500, then the states after t = 500, 490, …, 10 (x_499 … x_9), then x_0.
        let mut expected = vec![500];
        expected.extend((1..=50).rev().map(|k| 10 * k - 1));
        expected.push(0);
        assert_eq!(ts, expected);
        let other = sample(
            &den,
            &schedule,
            Some(&g),
            &SamplerConfig {
                seed: 99,
                ..config.clone()
            },
        )
        .unwrap();
        assert_ne!(a.final_points(), other.final_points());
    }

    #[test]
    fn observed_sampling_reports_every_step_and_changes_nothing() {
        let (schedule, exact) = exact();
        let den = exact.denoiser();
        let config = SamplerConfig {
            num_samples: 12,
            ..SamplerConfig::default()
        };
        let mut seen = Vec::new();
        let observed =
            sample_observed(&den, &schedule, None, &config, &mut |t| seen.push(t)).unwrap();
        assert_eq!(seen, (1..=schedule.num_steps()).rev().collect::<Vec<_>>());
        assert_eq!(observed, sample(&den, &schedule, None, &config).unwrap());
    }

    #[test]
    fn noise_on_a_second_thread_gives_the_same_bits() {
        let (schedule, exact) = exact();
        let (den, clf) = (exact.denoiser(), exact.classifier());
        let config = SamplerConfig {
            num_samples: 16,
            ..SamplerConfig::default()
        };
        let g = Guidance::one_class(&clf, 1, 30.0, 16);
        let a = sample_with(&den, &schedule, Some(&g), &config, Some(true), &mut |_| {}).unwrap();
        let b = sample_with(&den, &schedule, Some(&g), &config, Some(false), &mut |_| {}).unwrap();
        assert_eq!(a, b);
        // An error part-way stops the noise thread too (no hang).
        let err = sample_with(
            &BrokenAt(300),
            &schedule,
            None,
            &config,
            Some(true),
            &mut |_| {},
        )
        .unwrap_err();
        assert!(matches!(err, SamplerError::NonFinite { t: 300 }));
    }

    #[test]
    fn bad_configurations_are_errors() {
        let (schedule, exact) = exact();
        let (den, clf) = (exact.denoiser(), exact.classifier());
        let ok = SamplerConfig {
            num_samples: 4,
            ..SamplerConfig::default()
        };
        let run = |g: Option<&Guidance>, c: &SamplerConfig| sample(&den, &schedule, g, c);
        assert!(matches!(
            run(
                None,
                &SamplerConfig {
                    num_samples: 0,
                    ..ok.clone()
                }
            ),
            Err(SamplerError::InvalidNumSamples(0))
        ));
        assert!(matches!(
            run(
                None,
                &SamplerConfig {
                    snapshot_every: 0,
                    ..ok.clone()
                }
            ),
            Err(SamplerError::InvalidSnapshotInterval(0))
        ));
        let g = Guidance::one_class(&clf, 2, 30.0, 4);
        assert!(matches!(
            run(Some(&g), &ok),
            Err(SamplerError::InvalidTarget {
                class: 2,
                num_classes: 2
            })
        ));
        let g = Guidance::one_class(&clf, 0, f64::NAN, 4);
        assert!(matches!(
            run(Some(&g), &ok),
            Err(SamplerError::InvalidScale(_))
        ));
        let g = Guidance::one_class(&clf, 0, 1.0, 3);
        assert!(matches!(
            run(Some(&g), &ok),
            Err(SamplerError::TargetCount {
                targets: 3,
                samples: 4
            })
        ));
        let short = NoiseSchedule::new(schedule::ScheduleKind::NOTEBOOK_LINEAR, 100).unwrap();
        assert!(matches!(
            sample(&den, &short, None, &ok),
            Err(SamplerError::StepMismatch {
                model: 500,
                schedule: 100,
                ..
            })
        ));
    }

    /// A denoiser that returns NaN at one step, as a diverged network would.
    struct BrokenAt(usize);

    impl NoisePredictor for BrokenAt {
        fn num_steps(&self) -> usize {
            500
        }
        fn dim(&self) -> usize {
            2
        }
        fn predict_noise(&self, x_t: &Tensor, t: usize) -> candle_core::Result<Tensor> {
            let v = if t == self.0 { f64::NAN } else { 0.0 };
            x_t.ones_like()?.affine(v, 0.0)
        }
    }

    #[test]
    fn a_non_finite_sample_is_an_error_naming_t() {
        let schedule = NoiseSchedule::notebook();
        let config = SamplerConfig {
            num_samples: 8,
            ..SamplerConfig::default()
        };
        let err = sample(&BrokenAt(123), &schedule, None, &config).unwrap_err();
        assert!(matches!(err, SamplerError::NonFinite { t: 123 }), "{err}");
        assert!(err.to_string().contains("t = 123"));
    }

    #[test]
    fn posterior_variance_option_changes_the_noise_only() {
        let (schedule, exact) = exact();
        let den = exact.denoiser();
        let base = SamplerConfig {
            num_samples: 16,
            ..SamplerConfig::default()
        };
        let a = sample(&den, &schedule, None, &base).unwrap();
        let b = sample(
            &den,
            &schedule,
            None,
            &SamplerConfig {
                variance: ReverseVariance::Posterior,
                ..base
            },
        )
        .unwrap();
        // Same x_T (same seed), different paths afterwards.
        assert_eq!(a.snapshots[0], b.snapshots[0]);
        assert_ne!(a.final_points(), b.final_points());
    }
}

/// The README's example, compiled and run with the doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
