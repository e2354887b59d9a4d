//! The diffusion model as a density: log p(x_0) through the probability-flow ODE, and the
//! discrete-time variational bound (ELBO) of the DDPM chain, both in nats per point, in the
//! units the model sees.
//!
//! # Which process the ODE integrates
//!
//! The nets are trained on the discrete T-step schedule, and only at its integer steps t.
//! The ODE here needs nothing else: in the variables of [`crate::solvers`],
//! x̃ = x/√ᾱ_t and σ_t = √((1 − ᾱ_t)/ᾱ_t), the forward process is x̃ = x_0 + σ z at every
//! step, so its marginals are those of the variance-exploding process x̃_σ = x_0 + σ z
//! (σ from 0 to σ_T), whose probability-flow ODE is dx̃/dσ = −σ ∇_x̃ log p_σ(x̃) = ε(x_t, t)
//! (Karras et al. 2022, eq. 4 and table 1, VP; Song et al. 2021, eq. 13). Any continuous
//! time that passes through the schedule's steps gives this same ODE in σ, so no β(t)
//! between steps is chosen or needed; the integrator evaluates the model only at the
//! schedule's integer steps (t enters the net as it did in training), and the exact
//! model's score at those steps is the exact score of this process.
//!
//! # The log-density
//!
//! Along the ODE, d log p_σ(x̃(σ))/dσ = −∇_x̃ · ε = −√ᾱ_t ∇_x · ε(x_t, t) (the instantaneous
//! change of variables: Chen et al. 2018, theorem 1; Song et al. 2021, appendix D.2, eq. 39),
//! so
//!
//! log p_0(x_0) = log N(x_T; 0, I) + (d/2) log ᾱ_T + ∫_0^{σ_T} √ᾱ_t ∇_x · ε(x_t, t) dσ,
//!
//! with the prior p(x_T) = N(0, I) of DDPM (the middle term is the Jacobian of
//! x_T = √ᾱ_T x̃_T). The divergence is exact: [`models::NoisePredictor::noise_and_divergence`]
//! (two backward passes of candle's autograd for the 2-D nets, a closed form for the exact
//! mixture), no Hutchinson estimator.
//!
//! The integrator ([`ode_log_likelihood`]) is Heun's method (second order) on the grid
//! 0 < τ_1 = 1 < … < τ_K = T of [`crate::timesteps`] (read upwards), over the pair
//! (x_t, log-density change): the first step, from the data (σ = 0) to τ_1, is an Euler
//! step with the model at τ_1 (the mirror of the samplers' last step; the net was never
//! trained at t = 0), and every later step a Heun step between two grid steps, so 2K − 1
//! model evaluations, each with its divergence, as the Heun sampler.
//!
//! # The ELBO
//!
//! [`elbo`] is Ho et al. 2020, eq. 5: log p(x_0) ≥ −(L_T + Σ_{t=2}^T L_{t−1} + L_0), with
//! L_T = KL(q(x_T | x_0) ‖ N(0, I)) in closed form, L_{t−1} = KL(q(x_{t−1} | x_t, x_0) ‖
//! p_θ(x_{t−1} | x_t)) between two Gaussians (eq. 6–7; p_θ's variance σ_t² is the
//! sampler's [`ReverseVariance`]) at one draw of x_t per point and step, and the decoder
//! L_0 = −log N(x_0; μ_θ(x_1, 1), β_1 I): the continuous-data Gaussian decoder with σ_1² = β_1
//! (Ho et al.'s decoder discretises images to 8 bits, section 3.3; β̃_1 = 0 would be
//! degenerate, so t = 1 uses β_1 with either variance). Each point's bound is a one-sample
//! Monte Carlo estimate over x_1..x_T, unbiased, with ‖ε − ε_θ‖² replaced by
//! ‖ε − ε_θ‖² − ‖ε‖² + d (the same mean, since E‖ε‖² = d: a control variate for the χ²
//! noise of the small-t terms, whose coefficients ≈ 1/(2t) are the largest); its spread
//! over points gives the standard error of the mean.
//!
//! Both call the model [`CHUNK_ROWS`] rows at a time, as the samplers do, so memory stays
//! bounded whatever the number of points (rows are independent: the same values).

use candle_core::{Device, Tensor};
use models::NoisePredictor;
use rand::{rngs::StdRng, SeedableRng};
use schedule::NoiseSchedule;

use crate::solvers::{alpha_bar, flow_coefficients, ode_sigma, timesteps};
use crate::{model_outputs, standard_normals, ReverseVariance, SamplerError, CHUNK_ROWS};

/// ½ log 2π.
const HALF_LOG_TAU: f64 = 0.918_938_533_204_672_7;

fn check_points(
    denoiser: &dyn NoisePredictor,
    schedule: &NoiseSchedule,
    points: &[f64],
) -> Result<usize, SamplerError> {
    if denoiser.num_steps() != schedule.num_steps() {
        return Err(SamplerError::StepMismatch {
            what: "denoiser",
            model: denoiser.num_steps(),
            schedule: schedule.num_steps(),
        });
    }
    let d = denoiser.dim();
    if points.is_empty() {
        return Err(SamplerError::InvalidNumSamples(0));
    }
    if !points.len().is_multiple_of(d) {
        return Err(SamplerError::LengthMismatch {
            what: "the points",
            len: points.len(),
            expected: points.len() / d * d,
        });
    }
    if points.iter().any(|v| !v.is_finite()) {
        return Err(SamplerError::NonFiniteLikelihood { t: 0 });
    }
    Ok(points.len() / d)
}

/// ε(x, t) (f64, row-major) and √ᾱ_t ∇_x · ε(x, t) = ∇_x̃ · ε, the drift of the ODE in x̃
/// and its divergence, the model called [`CHUNK_ROWS`] rows at a time (as the samplers).
fn drift_and_divergence(
    denoiser: &dyn NoisePredictor,
    schedule: &NoiseSchedule,
    x: &[f64],
    t: usize,
) -> Result<(Vec<f64>, Vec<f64>), SamplerError> {
    let d = denoiser.dim();
    let n = x.len() / d;
    let root = schedule.sqrt_alpha_bar(t);
    let (mut drift, mut divergence) = (Vec::with_capacity(n * d), Vec::with_capacity(n));
    for rows in x.chunks(CHUNK_ROWS * d) {
        let m = rows.len() / d;
        let x32: Vec<f32> = rows.iter().map(|&v| v as f32).collect();
        let x_t = Tensor::from_vec(x32, (m, d), &Device::Cpu)?;
        let (eps, div) = denoiser.noise_and_divergence(&x_t, t)?;
        let eps: Vec<f64> = eps
            .to_dtype(candle_core::DType::F64)?
            .flatten_all()?
            .to_vec1::<f64>()?;
        if eps.len() != m * d || div.len() != m {
            return Err(candle_core::Error::Msg(format!(
                "a model returned {} noise values and {} divergences for {m} points",
                eps.len(),
                div.len()
            ))
            .into());
        }
        drift.extend(eps);
        divergence.extend(div.iter().map(|v| root * v));
    }
    Ok((drift, divergence))
}

/// log N(x; 0, I) of each row of a row-major batch of dimension d.
fn standard_normal_log_density(x: &[f64], d: usize) -> Vec<f64> {
    x.chunks_exact(d)
        .map(|row| -(d as f64) * HALF_LOG_TAU - 0.5 * row.iter().map(|v| v * v).sum::<f64>())
        .collect()
}

fn check_finite(values: &[f64], t: usize) -> Result<(), SamplerError> {
    if values.iter().all(|v| v.is_finite()) {
        Ok(())
    } else {
        Err(SamplerError::NonFiniteLikelihood { t })
    }
}

/// Model evaluations (each with its divergence) of [`ode_log_likelihood`] over K steps: 2K − 1.
pub fn ode_model_evaluations(steps: usize) -> usize {
    (2 * steps).saturating_sub(1)
}

/// The ODE's result for a batch of points.
#[derive(Debug, Clone, PartialEq)]
pub struct OdeLikelihood {
    /// log p_0(x) of each point with the prior N(0, I) at T, in nats.
    pub log_likelihood: Vec<f64>,
    /// Where each point's path ends, x_T (row-major, n × d).
    pub terminal: Vec<f64>,
    /// log p_0(x) − log p_T(x_T) of each point: (d/2) log ᾱ_T + ∫ √ᾱ_t ∇·ε dσ (so another
    /// prior p_T, e.g. the exact q_T, gives log p_T(x_T) + this).
    pub log_density_change: Vec<f64>,
}

/// log p_0(x) of each point (row-major, n × d, in the model's units) by the
/// probability-flow ODE from t = 0 to T with Heun's method over `steps` = K grid steps
/// ([`timesteps`]), the exact divergence and the prior N(0, I) at T (module docs).
///
/// Errors: K outside 1..=T, a model built for another T, no points or a ragged batch, and
/// [`SamplerError::NonFiniteLikelihood`] naming the step where a state, a divergence or
/// the result stopped being finite.
pub fn ode_log_likelihood(
    denoiser: &dyn NoisePredictor,
    schedule: &NoiseSchedule,
    points: &[f64],
    steps: usize,
) -> Result<OdeLikelihood, SamplerError> {
    let n = check_points(denoiser, schedule, points)?;
    let d = denoiser.dim();
    let mut grid = timesteps(schedule.num_steps(), steps)?;
    grid.reverse(); // τ_1 = 1 < … < τ_K = T
    let mut x = points.to_vec();
    // ∫ ∇_x̃ · ε dσ so far, per point.
    let mut change = vec![0.0; n];
    // The first step, 0 → τ_1: Euler with the model at τ_1, at the data.
    let first = grid[0];
    let (eps, div) = drift_and_divergence(denoiser, schedule, &x, first)?;
    let (a, b) = flow_coefficients(schedule, 0, first);
    for (v, e) in x.iter_mut().zip(&eps) {
        *v = a * *v + b * e;
    }
    let h = ode_sigma(schedule, first);
    for (c, dv) in change.iter_mut().zip(&div) {
        *c += h * dv;
    }
    check_finite(&x, first)?;
    check_finite(&change, first)?;
    // Heun steps τ_i → τ_{i+1}.
    for w in grid.windows(2) {
        let (t, s) = (w[0], w[1]);
        let (a, b) = flow_coefficients(schedule, t, s);
        let h = ode_sigma(schedule, s) - ode_sigma(schedule, t);
        let (eps_t, div_t) = drift_and_divergence(denoiser, schedule, &x, t)?;
        let predicted: Vec<f64> = x.iter().zip(&eps_t).map(|(v, e)| a * v + b * e).collect();
        check_finite(&predicted, s)?;
        let (eps_s, div_s) = drift_and_divergence(denoiser, schedule, &predicted, s)?;
        for (v, (e1, e2)) in x.iter_mut().zip(eps_t.iter().zip(&eps_s)) {
            *v = a * *v + b * 0.5 * (e1 + e2);
        }
        for (c, (d1, d2)) in change.iter_mut().zip(div_t.iter().zip(&div_s)) {
            *c += h * 0.5 * (d1 + d2);
        }
        check_finite(&x, s)?;
        check_finite(&change, s)?;
    }
    let num_steps = schedule.num_steps();
    let jacobian = 0.5 * d as f64 * alpha_bar(schedule, num_steps).ln();
    let log_density_change: Vec<f64> = change.iter().map(|c| jacobian + c).collect();
    let log_likelihood: Vec<f64> = standard_normal_log_density(&x, d)
        .iter()
        .zip(&log_density_change)
        .map(|(p, c)| p + c)
        .collect();
    check_finite(&log_likelihood, num_steps)?;
    Ok(OdeLikelihood {
        log_likelihood,
        terminal: x,
        log_density_change,
    })
}

/// The terms of the ELBO of each point, in nats (module docs): −ELBO = prior + Σ
/// transitions + decoder.
#[derive(Debug, Clone, PartialEq)]
pub struct ElboTerms {
    /// L_T = KL(q(x_T | x_0) ‖ N(0, I)), per point.
    pub prior: Vec<f64>,
    /// Σ_{t=2}^T L_{t−1}, per point (one draw of x_t per step).
    pub transitions: Vec<f64>,
    /// L_0 = −log N(x_0; μ_θ(x_1, 1), β_1 I), per point (one draw of x_1).
    pub decoder: Vec<f64>,
}

impl ElboTerms {
    /// The ELBO of each point: −(L_T + Σ L_{t−1} + L_0).
    pub fn elbo(&self) -> Vec<f64> {
        self.prior
            .iter()
            .zip(&self.transitions)
            .zip(&self.decoder)
            .map(|((p, t), d)| -(p + t + d))
            .collect()
    }
}

/// The discrete-time variational bound of each point (row-major, n × d, model units) under
/// the DDPM chain with reverse variance `variance` (Ho et al. 2020, eq. 5; module docs).
/// The noise of x_t is drawn for t = 1, …, T in turn from one RNG seeded with `seed`.
pub fn elbo(
    denoiser: &dyn NoisePredictor,
    schedule: &NoiseSchedule,
    points: &[f64],
    variance: ReverseVariance,
    seed: u64,
) -> Result<ElboTerms, SamplerError> {
    let n = check_points(denoiser, schedule, points)?;
    let d = denoiser.dim();
    let num_steps = schedule.num_steps();
    let dims = d as f64;
    // L_T = ½ Σ_j (ᾱ_T x_j² + (1 − ᾱ_T) − 1 − log(1 − ᾱ_T)): KL of N(√ᾱ_T x, (1 − ᾱ_T) I) to N(0, I).
    let a_t = schedule.alpha_bar(num_steps);
    let prior: Vec<f64> = points
        .chunks_exact(d)
        .map(|row| {
            0.5 * (a_t * row.iter().map(|v| v * v).sum::<f64>() + dims * (-a_t - (1.0 - a_t).ln()))
        })
        .collect();
    let mut transitions = vec![0.0; n];
    let mut decoder = vec![0.0; n];
    let mut rng = StdRng::seed_from_u64(seed);
    for t in 1..=num_steps {
        let z = standard_normals(&mut rng, n * d);
        let (root_a, root_1m) = (
            schedule.sqrt_alpha_bar(t),
            schedule.sqrt_one_minus_alpha_bar(t),
        );
        let x_t: Vec<f32> = points
            .iter()
            .zip(&z)
            .map(|(x, e)| (root_a * x + root_1m * e) as f32)
            .collect();
        let (eps, _) = model_outputs(denoiser, None, &x_t, d, t, CHUNK_ROWS)?;
        let (beta, alpha) = (schedule.beta(t), schedule.alpha(t));
        // ‖ε − ε_θ(x_t, t)‖² − ‖ε‖² + d per point: the same mean as ‖ε − ε_θ‖² (E‖ε‖² = d),
        // with the control variate ‖ε‖² − d taking out the χ²_d noise that dominates it
        // where ε_θ is small beside ε (small t, where the coefficients are largest).
        let errors = z.chunks_exact(d).zip(eps.chunks_exact(d)).map(|(e, p)| {
            e.iter()
                .zip(p)
                .map(|(&a, &b)| (a - f64::from(b)).powi(2) - a * a)
                .sum::<f64>()
                + dims
        });
        if t == 1 {
            // x_0 − μ_θ(x_1, 1) = −√(β_1/α_1) (ε − ε_θ) since ᾱ_1 = α_1:
            // L_0 = (d/2) log(2π β_1) + ‖ε − ε_θ‖²/(2 α_1).
            for (l, err) in decoder.iter_mut().zip(errors) {
                *l = dims * (HALF_LOG_TAU + 0.5 * beta.ln()) + err / (2.0 * alpha);
            }
        } else {
            // KL(N(μ̃, β̃ I) ‖ N(μ_θ, σ² I)) = (d/2)(log(σ²/β̃) + β̃/σ² − 1) + ‖μ̃ − μ_θ‖²/(2σ²),
            // ‖μ̃ − μ_θ‖² = β_t²/(α_t (1 − ᾱ_t)) ‖ε − ε_θ‖² (Ho et al. 2020, eq. 8–12).
            let sigma2 = variance.variance(schedule, t);
            let posterior = schedule.posterior_variance(t);
            let constant = 0.5 * dims * ((sigma2 / posterior).ln() + posterior / sigma2 - 1.0);
            let coef = beta * beta / (2.0 * sigma2 * alpha * (1.0 - schedule.alpha_bar(t)));
            for (l, err) in transitions.iter_mut().zip(errors) {
                *l += constant + coef * err;
            }
        }
        check_finite(&transitions, t)?;
        check_finite(&decoder, t)?;
    }
    Ok(ElboTerms {
        prior,
        transitions,
        decoder,
    })
}
