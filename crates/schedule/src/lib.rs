//! Noise schedules for DDPM diffusion: β_t, α_t, ᾱ_t and everything derived from
//! them, the closed-form forward marginal q(x_t | x_0), and step-by-step forward
//! diffusion with snapshots.
//!
//! Time steps are **1-based**, as in the notebook: `t` runs over `1..=T`, and
//! `t = 0` is the clean data.
//!
//! ```
//! use schedule::{NoiseSchedule, ScheduleKind};
//!
//! // The notebook's schedule: T = 500, β linear from 1e-4 to 0.02.
//! let s = NoiseSchedule::notebook();
//! assert_eq!(s.num_steps(), 500);
//! assert!((s.alpha_bar(250) - 0.2807).abs() < 1e-3);
//!
//! // x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε, elementwise.
//! let x_t = s.q_sample(&[1.0, -1.0], 250, &[0.0, 0.0]);
//! assert!((x_t[0] - s.sqrt_alpha_bar(250)).abs() < 1e-12);
//!
//! // Other schedules are chosen by name at the edge of a program.
//! let cosine: ScheduleKind = "cosine".parse().unwrap();
//! let c = NoiseSchedule::new(cosine, 1000).unwrap();
//! assert!(c.alpha_bar(1000) < 1e-3);
//! ```

use rand::Rng;
use rand_distr::StandardNormal;
use std::fmt;
use std::str::FromStr;

/// Errors from building or using a schedule.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScheduleError {
    /// T must be at least 1.
    #[error("number of diffusion steps T = {0} is invalid: T must be at least 1")]
    InvalidNumSteps(usize),
    /// β_start and β_end must satisfy 0 < β_start ≤ β_end < 1.
    #[error("β range {start}..{end} is invalid: need 0 < β_start ≤ β_end < 1")]
    InvalidBetaRange { start: f64, end: f64 },
    /// The cosine offset s must be finite and ≥ 0.
    #[error("cosine offset s = {0} is invalid: need a finite s ≥ 0")]
    InvalidCosineOffset(f64),
    /// A schedule name that is not one of the known ones.
    #[error("unknown schedule '{0}': expected one of linear, cosine, quadratic")]
    UnknownName(String),
    /// A computed β_t fell outside (0, 1).
    #[error("β_{t} = {beta} is outside (0, 1)")]
    BetaOutOfRange { t: usize, beta: f64 },
    /// A snapshot interval of zero.
    #[error("snapshot interval {0} is invalid: it must be at least 1")]
    InvalidInterval(usize),
    /// x_0 and the noise differ in length.
    #[error("x0 has {x0} values but the noise has {noise}: they must match")]
    LengthMismatch { x0: usize, noise: usize },
}

/// How β_t is laid out over the T steps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ScheduleKind {
    /// β_t = β_start + (β_end − β_start)(t − 1)/(T − 1) (Ho et al. 2020; the notebook's).
    Linear { beta_start: f64, beta_end: f64 },
    /// β_t = (√β_start + (√β_end − √β_start)(t − 1)/(T − 1))².
    Quadratic { beta_start: f64, beta_end: f64 },
    /// ᾱ_t = f(t)/f(0), f(t) = cos²(π/2 · (t/T + s)/(1 + s)), β_t = min(1 − ᾱ_t/ᾱ_{t−1}, 0.999)
    /// (Nichol & Dhariwal 2021).
    Cosine { offset: f64 },
}

impl ScheduleKind {
    /// The notebook's linear schedule, β from 1e-4 to 0.02.
    pub const NOTEBOOK_LINEAR: ScheduleKind = ScheduleKind::Linear {
        beta_start: 1e-4,
        beta_end: 0.02,
    };

    /// The names [`FromStr`] accepts.
    pub const NAMES: [&'static str; 3] = ["linear", "cosine", "quadratic"];

    /// The schedule's name, as accepted by [`FromStr`].
    pub fn name(&self) -> &'static str {
        match self {
            ScheduleKind::Linear { .. } => "linear",
            ScheduleKind::Quadratic { .. } => "quadratic",
            ScheduleKind::Cosine { .. } => "cosine",
        }
    }
}

impl fmt::Display for ScheduleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ScheduleKind {
    type Err = ScheduleError;

    /// `linear` and `quadratic` use β from 1e-4 to 0.02; `cosine` uses s = 0.008.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name.trim().to_ascii_lowercase().as_str() {
            "linear" => Ok(ScheduleKind::NOTEBOOK_LINEAR),
            "quadratic" => Ok(ScheduleKind::Quadratic {
                beta_start: 1e-4,
                beta_end: 0.02,
            }),
            "cosine" => Ok(ScheduleKind::Cosine { offset: 0.008 }),
            _ => Err(ScheduleError::UnknownName(name.to_string())),
        }
    }
}

/// One snapshot of forward diffusion: the points (flat, as given) after `t` steps.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Steps taken so far (0 = the original data).
    pub t: usize,
    /// The points, laid out like the input.
    pub points: Vec<f64>,
}

/// A noise schedule with every coefficient precomputed once (index `t − 1` holds step `t`).
#[derive(Debug, Clone, PartialEq)]
pub struct NoiseSchedule {
    kind: ScheduleKind,
    betas: Vec<f64>,
    alphas: Vec<f64>,
    alpha_bars: Vec<f64>,
    sqrt_alpha_bars: Vec<f64>,
    sqrt_one_minus_alpha_bars: Vec<f64>,
    posterior_variances: Vec<f64>,
}

impl NoiseSchedule {
    /// Builds a schedule of `num_steps` = T steps, validating T ≥ 1 and 0 < β_t < 1.
    pub fn new(kind: ScheduleKind, num_steps: usize) -> Result<Self, ScheduleError> {
        if num_steps == 0 {
            return Err(ScheduleError::InvalidNumSteps(num_steps));
        }
        let frac = |i: usize| {
            if num_steps == 1 {
                0.0
            } else {
                i as f64 / (num_steps - 1) as f64
            }
        };
        let betas: Vec<f64> = match kind {
            ScheduleKind::Linear {
                beta_start,
                beta_end,
            } => {
                check_range(beta_start, beta_end)?;
                (0..num_steps)
                    .map(|i| beta_start + (beta_end - beta_start) * frac(i))
                    .collect()
            }
            ScheduleKind::Quadratic {
                beta_start,
                beta_end,
            } => {
                check_range(beta_start, beta_end)?;
                let (a, b) = (beta_start.sqrt(), beta_end.sqrt());
                (0..num_steps)
                    .map(|i| (a + (b - a) * frac(i)).powi(2))
                    .collect()
            }
            ScheduleKind::Cosine { offset } => {
                if !offset.is_finite() || offset < 0.0 {
                    return Err(ScheduleError::InvalidCosineOffset(offset));
                }
                // Floating-point t/T throughout (candle's version divides integers).
                let f = |t: usize| {
                    let u = (t as f64 / num_steps as f64 + offset) / (1.0 + offset);
                    (u * std::f64::consts::FRAC_PI_2).cos().powi(2)
                };
                (1..=num_steps)
                    .map(|t| (1.0 - f(t) / f(t - 1)).clamp(1e-12, 0.999))
                    .collect()
            }
        };
        Self::from_betas(kind, betas)
    }

    /// The notebook's schedule: linear β from 1e-4 to 0.02 over T = 500 steps.
    pub fn notebook() -> Self {
        Self::new(ScheduleKind::NOTEBOOK_LINEAR, 500).expect("the notebook's schedule is valid")
    }

    fn from_betas(kind: ScheduleKind, betas: Vec<f64>) -> Result<Self, ScheduleError> {
        if let Some((i, &beta)) = betas
            .iter()
            .enumerate()
            .find(|(_, &b)| !(b > 0.0 && b < 1.0))
        {
            return Err(ScheduleError::BetaOutOfRange { t: i + 1, beta });
        }
        let alphas: Vec<f64> = betas.iter().map(|b| 1.0 - b).collect();
        let alpha_bars: Vec<f64> = alphas
            .iter()
            .scan(1.0, |acc, a| {
                *acc *= a;
                Some(*acc)
            })
            .collect();
        // β̃_t = β_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t), with ᾱ_0 = 1 (so β̃_1 = 0).
        let posterior_variances = (0..betas.len())
            .map(|i| {
                let prev = if i == 0 { 1.0 } else { alpha_bars[i - 1] };
                betas[i] * (1.0 - prev) / (1.0 - alpha_bars[i])
            })
            .collect();
        Ok(Self {
            kind,
            sqrt_alpha_bars: alpha_bars.iter().map(|a| a.sqrt()).collect(),
            sqrt_one_minus_alpha_bars: alpha_bars.iter().map(|a| (1.0 - a).sqrt()).collect(),
            betas,
            alphas,
            alpha_bars,
            posterior_variances,
        })
    }

    /// Which kind of schedule this is.
    pub fn kind(&self) -> ScheduleKind {
        self.kind
    }

    /// T, the number of diffusion steps.
    pub fn num_steps(&self) -> usize {
        self.betas.len()
    }

    fn idx(&self, t: usize) -> usize {
        assert!(
            (1..=self.num_steps()).contains(&t),
            "time step t = {t} is outside 1..={}",
            self.num_steps()
        );
        t - 1
    }

    /// β_t, the variance of the noise added at step t (t in 1..=T; panics outside).
    pub fn beta(&self, t: usize) -> f64 {
        self.betas[self.idx(t)]
    }

    /// α_t = 1 − β_t.
    pub fn alpha(&self, t: usize) -> f64 {
        self.alphas[self.idx(t)]
    }

    /// ᾱ_t = ∏_{i ≤ t} α_i, the fraction of signal variance left after t steps.
    pub fn alpha_bar(&self, t: usize) -> f64 {
        self.alpha_bars[self.idx(t)]
    }

    /// √ᾱ_t, the scale of x_0 in q(x_t | x_0).
    pub fn sqrt_alpha_bar(&self, t: usize) -> f64 {
        self.sqrt_alpha_bars[self.idx(t)]
    }

    /// √(1 − ᾱ_t), the scale of the noise in q(x_t | x_0).
    pub fn sqrt_one_minus_alpha_bar(&self, t: usize) -> f64 {
        self.sqrt_one_minus_alpha_bars[self.idx(t)]
    }

    /// β̃_t = β_t (1 − ᾱ_{t−1})/(1 − ᾱ_t), the variance of the true posterior q(x_{t−1} | x_t, x_0).
    pub fn posterior_variance(&self, t: usize) -> f64 {
        self.posterior_variances[self.idx(t)]
    }

    /// SNR_t = ᾱ_t / (1 − ᾱ_t), the signal-to-noise ratio of q(x_t | x_0).
    pub fn snr(&self, t: usize) -> f64 {
        let a = self.alpha_bar(t);
        a / (1.0 - a)
    }

    /// β_1..β_T (index t − 1).
    pub fn betas(&self) -> &[f64] {
        &self.betas
    }

    /// ᾱ_1..ᾱ_T (index t − 1).
    pub fn alpha_bars(&self) -> &[f64] {
        &self.alpha_bars
    }

    /// x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε: a draw from q(x_t | x_0) given the noise ε, elementwise.
    ///
    /// Panics if `t` is outside 1..=T or the lengths differ; see [`Self::try_q_sample`].
    pub fn q_sample(&self, x0: &[f64], t: usize, noise: &[f64]) -> Vec<f64> {
        self.try_q_sample(x0, t, noise)
            .expect("x0 and noise have the same length")
    }

    /// [`Self::q_sample`] returning an error when x0 and the noise differ in length.
    pub fn try_q_sample(
        &self,
        x0: &[f64],
        t: usize,
        noise: &[f64],
    ) -> Result<Vec<f64>, ScheduleError> {
        if x0.len() != noise.len() {
            return Err(ScheduleError::LengthMismatch {
                x0: x0.len(),
                noise: noise.len(),
            });
        }
        let (a, b) = (self.sqrt_alpha_bar(t), self.sqrt_one_minus_alpha_bar(t));
        Ok(x0.iter().zip(noise).map(|(x, e)| a * x + b * e).collect())
    }

    /// Forward diffusion step by step, x_t = √α_t x_{t−1} + √β_t z, z ~ N(0, I) elementwise.
    ///
    /// Returns the snapshot at t = 0, at every multiple of `every`, and at T.
    pub fn forward_snapshots<R: Rng + ?Sized>(
        &self,
        x0: &[f64],
        every: usize,
        rng: &mut R,
    ) -> Result<Vec<Snapshot>, ScheduleError> {
        if every == 0 {
            return Err(ScheduleError::InvalidInterval(every));
        }
        let mut x = x0.to_vec();
        let mut out = vec![Snapshot {
            t: 0,
            points: x.clone(),
        }];
        for t in 1..=self.num_steps() {
            let (sa, sb) = (self.alpha(t).sqrt(), self.beta(t).sqrt());
            for v in x.iter_mut() {
                let z: f64 = rng.sample(StandardNormal);
                *v = sa * *v + sb * z;
            }
            if t % every == 0 || t == self.num_steps() {
                out.push(Snapshot {
                    t,
                    points: x.clone(),
                });
            }
        }
        Ok(out)
    }
}

fn check_range(start: f64, end: f64) -> Result<(), ScheduleError> {
    if start.is_finite() && end.is_finite() && 0.0 < start && start <= end && end < 1.0 {
        Ok(())
    } else {
        Err(ScheduleError::InvalidBetaRange { start, end })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn notebook_alpha_bar_matches_reference_table() {
        // ../shared/notes/reference-numbers.md, 4 decimals.
        let s = NoiseSchedule::notebook();
        for (t, expected) in [
            (1, 0.9999),
            (100, 0.8125),
            (250, 0.2807),
            (400, 0.0392),
            (500, 0.0064),
        ] {
            assert!(
                (s.alpha_bar(t) - expected).abs() < 5e-5,
                "t={t}: {}",
                s.alpha_bar(t)
            );
        }
        assert_eq!(s.beta(1), 1e-4);
        assert!((s.beta(500) - 0.02).abs() < 1e-15);
    }

    #[test]
    fn posterior_variance_golden_values() {
        // diffusers' DDPM test: linear 1e-4..0.02 with T = 1000 gives β̃ ≈ 0.00979 at
        // 0-based step 487 and ≈ 0.02 at 999 (their tolerance is 1e-5).
        let s = NoiseSchedule::new(ScheduleKind::NOTEBOOK_LINEAR, 1000).unwrap();
        assert!((s.posterior_variance(488) - 0.00979).abs() < 1e-5);
        assert!((s.posterior_variance(1000) - 0.02).abs() < 1e-5);
        assert_eq!(s.posterior_variance(1), 0.0);
        for t in 2..=1000 {
            assert!(s.posterior_variance(t) <= s.beta(t));
        }
    }

    #[test]
    fn cosine_is_floating_point_and_decreasing() {
        let s = NoiseSchedule::new("cosine".parse().unwrap(), 1000).unwrap();
        // Every β is positive (candle's integer-division bug makes them 0).
        assert!(s.betas().iter().all(|&b| b > 1e-6 && b <= 0.999));
        // ᾱ_1 = f(1)/f(0) computed by hand with s = 0.008.
        let f = |t: f64| {
            (((t / 1000.0 + 0.008) / 1.008) * std::f64::consts::FRAC_PI_2)
                .cos()
                .powi(2)
        };
        assert!((s.alpha_bar(1) - f(1.0) / f(0.0)).abs() < 1e-12);
        assert!((s.alpha_bar(500) - f(500.0) / f(0.0)).abs() < 1e-9);
        assert!(s.alpha_bars().windows(2).all(|w| w[1] < w[0]));
    }

    #[test]
    fn quadratic_endpoints() {
        let s = NoiseSchedule::new("quadratic".parse().unwrap(), 10).unwrap();
        assert!((s.beta(1) - 1e-4).abs() < 1e-15);
        assert!((s.beta(10) - 0.02).abs() < 1e-15);
        let mid = ((1e-4f64.sqrt() + 0.02f64.sqrt()) / 2.0).powi(2);
        let s11 = NoiseSchedule::new("quadratic".parse().unwrap(), 11).unwrap();
        assert!((s11.beta(6) - mid).abs() < 1e-15);
    }

    #[test]
    fn validation_errors() {
        assert_eq!(
            NoiseSchedule::new(ScheduleKind::NOTEBOOK_LINEAR, 0),
            Err(ScheduleError::InvalidNumSteps(0))
        );
        for (start, end) in [(0.0, 0.02), (0.02, 0.01), (1e-4, 1.0), (f64::NAN, 0.1)] {
            let kind = ScheduleKind::Linear {
                beta_start: start,
                beta_end: end,
            };
            assert!(matches!(
                NoiseSchedule::new(kind, 10),
                Err(ScheduleError::InvalidBetaRange { .. })
            ));
        }
        assert!(matches!(
            "sigmoid".parse::<ScheduleKind>(),
            Err(ScheduleError::UnknownName(n)) if n == "sigmoid"
        ));
        assert!(NoiseSchedule::new(ScheduleKind::Cosine { offset: -1.0 }, 10).is_err());
        let s = NoiseSchedule::notebook();
        let mut rng = StdRng::seed_from_u64(0);
        assert_eq!(
            s.forward_snapshots(&[0.0], 0, &mut rng),
            Err(ScheduleError::InvalidInterval(0))
        );
        assert!(s.try_q_sample(&[0.0, 1.0], 3, &[0.0]).is_err());
    }

    #[test]
    fn one_step_schedule_is_valid() {
        let s = NoiseSchedule::new(ScheduleKind::NOTEBOOK_LINEAR, 1).unwrap();
        assert_eq!(s.beta(1), 1e-4);
    }

    #[test]
    fn snapshots_every_k_and_last() {
        let s = NoiseSchedule::notebook();
        let mut rng = StdRng::seed_from_u64(1);
        let snaps = s.forward_snapshots(&[1.0, 2.0], 50, &mut rng).unwrap();
        let ts: Vec<usize> = snaps.iter().map(|s| s.t).collect();
        assert_eq!(ts, (0..=500).step_by(50).collect::<Vec<_>>());
        assert_eq!(snaps[0].points, vec![1.0, 2.0]);
        let snaps = s.forward_snapshots(&[1.0], 300, &mut rng).unwrap();
        assert_eq!(
            snaps.iter().map(|s| s.t).collect::<Vec<_>>(),
            vec![0, 300, 500]
        );
    }

    #[test]
    fn closed_form_and_step_by_step_agree_in_distribution() {
        // Start every point at x_0 = 2; after t steps both routes give N(2√ᾱ_t, 1 − ᾱ_t).
        let s = NoiseSchedule::notebook();
        let n = 20_000;
        let x0 = vec![2.0; n];
        let mut rng = StdRng::seed_from_u64(7);
        let snaps = s.forward_snapshots(&x0, 100, &mut rng).unwrap();
        for snap in &snaps[1..] {
            let t = snap.t;
            let noise: Vec<f64> = (0..n).map(|_| rng.sample(StandardNormal)).collect();
            let closed = s.q_sample(&x0, t, &noise);
            let var_true = 1.0 - s.alpha_bar(t);
            let mean_true = 2.0 * s.sqrt_alpha_bar(t);
            for xs in [&snap.points, &closed] {
                let mean = xs.iter().sum::<f64>() / n as f64;
                let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
                // 5 standard errors: SE(mean) = √(var/n), SE(var) = var·√(2/(n−1)).
                let se_mean = (var_true / n as f64).sqrt();
                let se_var = var_true * (2.0 / (n - 1) as f64).sqrt();
                assert!(
                    (mean - mean_true).abs() < 5.0 * se_mean,
                    "t={t} mean {mean}"
                );
                assert!((var - var_true).abs() < 5.0 * se_var, "t={t} var {var}");
            }
        }
    }

    #[test]
    fn same_seed_same_snapshots() {
        let s = NoiseSchedule::notebook();
        let run = || {
            let mut rng = StdRng::seed_from_u64(42);
            s.forward_snapshots(&[0.5, -0.5, 1.0], 50, &mut rng)
                .unwrap()
        };
        assert_eq!(run(), run());
    }
}

/// The README's example, compiled and run with the doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
