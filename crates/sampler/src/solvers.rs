//! Samplers over a sub-sequence of the T steps: DDIM (η ∈ [0, 1]), the probability-flow
//! ODE with Euler and with Heun, and DPM-Solver++(2M).
//!
//! Each is one pure step function from x_t to x_s (s < t, s = 0 for the last step) on
//! host f32 values, with its coefficients computed in f64 and rounded to f32 once, plus
//! [`sample_solver`], which runs any of them over a sub-sequence ([`timesteps`]) with any
//! [`NoisePredictor`] (learned or exact) and optional guidance. For these samplers guidance
//! shifts the predicted noise, ε̂ = ε − s √(1 − ᾱ_t) ∇ log p(y | x_t, t) ([`guided_noise`]),
//! instead of the mean.
//!
//! The ODE samplers work in the variables of Karras et al. 2022 for the variance-preserving
//! process: x̃ = x/√ᾱ_t and σ_t = √((1 − ᾱ_t)/ᾱ_t), where the probability-flow ODE reads
//! dx̃/dσ = ε(x, t). Its Euler step is exactly DDIM with η = 0 (Song, Meng & Ermon 2021,
//! section 4.3; tested as such), computed from its own formula. ᾱ_0 = 1: x_0 is the data.

use models::NoisePredictor;
use rand::{rngs::StdRng, SeedableRng};
use schedule::NoiseSchedule;

use crate::{
    check_len, check_step, model_outputs, standard_normals, validate, with_noise, GuidanceGradient,
    GuidanceTerm, SampleRun, SamplerConfig, SamplerError, Snapshots, CHUNK_ROWS,
};

/// ᾱ_t, with ᾱ_0 = 1 (no noise).
pub(crate) fn alpha_bar(schedule: &NoiseSchedule, t: usize) -> f64 {
    if t == 0 {
        1.0
    } else {
        schedule.alpha_bar(t)
    }
}

/// σ_t = √((1 − ᾱ_t)/ᾱ_t), the noise level of x̃ = x/√ᾱ_t (Karras et al. 2022, table 1, VP; σ_0 = 0).
pub fn ode_sigma(schedule: &NoiseSchedule, t: usize) -> f64 {
    let a = alpha_bar(schedule, t);
    ((1.0 - a) / a).sqrt()
}

/// λ_t = log(√ᾱ_t/√(1 − ᾱ_t)), half the log signal-to-noise ratio (Lu et al. 2022, DPM-Solver, section 3.1).
fn half_log_snr(schedule: &NoiseSchedule, t: usize) -> f64 {
    let a = alpha_bar(schedule, t);
    0.5 * (a / (1.0 - a)).ln()
}

/// The K steps τ_K = T > … > τ_1 = 1 of a K-step sampler, evenly spaced and rounded to the
/// nearest step (K = T: every step; K = 1: T alone). Each step goes from τ_i to τ_{i−1},
/// and the last from τ_1 to 0.
pub fn timesteps(num_steps: usize, k: usize) -> Result<Vec<usize>, SamplerError> {
    if k == 0 || k > num_steps {
        return Err(SamplerError::InvalidStepCount {
            steps: k,
            num_steps,
        });
    }
    if k == 1 {
        return Ok(vec![num_steps]);
    }
    let (span, gaps) = (num_steps - 1, k - 1);
    Ok((0..k)
        .rev()
        .map(|i| 1 + (i * span + gaps / 2) / gaps)
        .collect())
}

fn check_pair(schedule: &NoiseSchedule, t: usize, s: usize) -> Result<(), SamplerError> {
    check_step(schedule, t)?;
    if s >= t {
        return Err(SamplerError::InvalidTimesteps(format!(
            "a step goes from t = {t} to s = {s}: s must be below t"
        )));
    }
    Ok(())
}

/// x_s = a x_t + b ε (+ c z), rounding a, b and c·z to f32 once each.
fn combine(a: f64, x_t: &[f32], b: f64, eps: &[f32], noise: Option<(f64, &[f64])>) -> Vec<f32> {
    let (a, b) = (a as f32, b as f32);
    let mut x: Vec<f32> = x_t.iter().zip(eps).map(|(&x, &e)| x * a + e * b).collect();
    if let Some((c, z)) = noise {
        for (v, &z) in x.iter_mut().zip(z) {
            *v += (c * z) as f32;
        }
    }
    x
}

/// ε̂ = ε − s √(1 − ᾱ_t) ∇_x log p(y | x_t, t): classifier guidance of a deterministic
/// sampler (Dhariwal & Nichol 2021, section 4.2, eq. 14 and Algorithm 2); ε itself without guidance.
pub fn guided_noise(
    schedule: &NoiseSchedule,
    t: usize,
    eps: &[f32],
    guidance: Option<GuidanceTerm<'_>>,
) -> Result<Vec<f32>, SamplerError> {
    check_step(schedule, t)?;
    let Some(g) = guidance else {
        return Ok(eps.to_vec());
    };
    check_len("the guidance gradient", g.gradient, eps.len())?;
    let k = (g.scale * schedule.sqrt_one_minus_alpha_bar(t)) as f32;
    Ok(eps
        .iter()
        .zip(g.gradient)
        .map(|(&e, &gr)| e - gr * k)
        .collect())
}

/// x̂_0 = (x_t − √(1 − ᾱ_t) ε)/√ᾱ_t, the data predicted from x_t and ε (Song et al. 2021, DDIM, eq. 9).
pub fn predicted_x0(
    schedule: &NoiseSchedule,
    t: usize,
    x_t: &[f32],
    eps: &[f32],
) -> Result<Vec<f32>, SamplerError> {
    check_step(schedule, t)?;
    check_len("ε", eps, x_t.len())?;
    let inv = 1.0 / schedule.sqrt_alpha_bar(t);
    Ok(combine(
        inv,
        x_t,
        -schedule.sqrt_one_minus_alpha_bar(t) * inv,
        eps,
        None,
    ))
}

/// The DDIM noise scale σ_{t→s}(η) = η √((1 − ᾱ_s)/(1 − ᾱ_t)) √(1 − ᾱ_t/ᾱ_s) (Song et al. 2021, DDIM, eq. 16).
pub fn ddim_sigma(schedule: &NoiseSchedule, t: usize, s: usize, eta: f64) -> f64 {
    let (a_t, a_s) = (alpha_bar(schedule, t), alpha_bar(schedule, s));
    eta * ((1.0 - a_s) / (1.0 - a_t)).sqrt() * (1.0 - a_t / a_s).sqrt()
}

/// One DDIM step t → s: x_s = √ᾱ_s x̂_0 + √(1 − ᾱ_s − σ²) ε + σ z, σ = [`ddim_sigma`]
/// (Song et al. 2021, DDIM, eq. 12).
///
/// η = 1 with s = t − 1 is the DDPM step with σ² = β̃_t; η = 0 is deterministic (the
/// Euler step of the probability-flow ODE). `z` (standard normals) is needed when σ > 0
/// and ignored when σ = 0.
pub fn ddim_step(
    schedule: &NoiseSchedule,
    t: usize,
    s: usize,
    eta: f64,
    x_t: &[f32],
    eps: &[f32],
    z: Option<&[f64]>,
) -> Result<Vec<f32>, SamplerError> {
    check_pair(schedule, t, s)?;
    check_eta(eta)?;
    check_len("ε", eps, x_t.len())?;
    let (a_t, a_s) = (alpha_bar(schedule, t), alpha_bar(schedule, s));
    let sigma = ddim_sigma(schedule, t, s, eta);
    let a = (a_s / a_t).sqrt();
    let b = (1.0 - a_s - sigma * sigma).max(0.0).sqrt() - a * (1.0 - a_t).sqrt();
    let noise = if sigma > 0.0 {
        let z = z.ok_or_else(|| {
            SamplerError::InvalidTimesteps(format!(
                "the DDIM step t = {t} → {s} with η = {eta} adds noise, and no z was given"
            ))
        })?;
        check_len("z", z, x_t.len())?;
        Some((sigma, z))
    } else {
        None
    };
    Ok(combine(a, x_t, b, eps, noise))
}

/// (a, b) with x_s = a x_t + b ε for an Euler step t → s of dx̃/dσ = ε (either direction;
/// t = 0 or s = 0 is the data): a = √ᾱ_s/√ᾱ_t, b = √ᾱ_s (σ_s − σ_t) (Karras et al. 2022,
/// eq. 4 with s(t) = √ᾱ_t). Every ODE step of this crate, sampling and likelihood, uses it.
pub(crate) fn flow_coefficients(schedule: &NoiseSchedule, t: usize, s: usize) -> (f64, f64) {
    let root_s = alpha_bar(schedule, s).sqrt();
    (
        root_s / alpha_bar(schedule, t).sqrt(),
        root_s * (ode_sigma(schedule, s) - ode_sigma(schedule, t)),
    )
}

/// One Euler step t → s of the probability-flow ODE dx̃/dσ = ε:
/// x_s = √ᾱ_s (x_t/√ᾱ_t + (σ_s − σ_t) ε) (Karras et al. 2022, Algorithm 1 without its correction).
pub fn euler_step(
    schedule: &NoiseSchedule,
    t: usize,
    s: usize,
    x_t: &[f32],
    eps: &[f32],
) -> Result<Vec<f32>, SamplerError> {
    check_pair(schedule, t, s)?;
    check_len("ε", eps, x_t.len())?;
    let (a, b) = flow_coefficients(schedule, t, s);
    Ok(combine(a, x_t, b, eps, None))
}

/// Heun's correction of an Euler step t → s: x_s = √ᾱ_s (x_t/√ᾱ_t + (σ_s − σ_t)(ε_t + ε_s')/2),
/// ε_s' = ε at the Euler prediction (Karras et al. 2022, Algorithm 1, lines 5–8; needs s > 0).
pub fn heun_step(
    schedule: &NoiseSchedule,
    t: usize,
    s: usize,
    x_t: &[f32],
    eps_t: &[f32],
    eps_predicted: &[f32],
) -> Result<Vec<f32>, SamplerError> {
    check_pair(schedule, t, s)?;
    if s == 0 {
        return Err(SamplerError::InvalidTimesteps(
            "Heun's correction needs s > 0 (the last step to 0 is an Euler step)".into(),
        ));
    }
    check_len("ε_t", eps_t, x_t.len())?;
    check_len("ε at the prediction", eps_predicted, x_t.len())?;
    let (a, b) = flow_coefficients(schedule, t, s);
    let (a, half_b) = (a as f32, (0.5 * b) as f32);
    Ok(x_t
        .iter()
        .zip(eps_t.iter().zip(eps_predicted))
        .map(|(&x, (&e1, &e2))| x * a + e1 * half_b + e2 * half_b)
        .collect())
}

/// One DPM-Solver++(2M) step t → s from the predicted data x̂_0 (Lu et al. 2022, DPM-Solver++, Algorithm 2):
/// x_s = (σ_s/σ_t) x_t − α_s (e^{−h} − 1) D, h = λ_s − λ_t, α = √ᾱ, σ = √(1 − ᾱ),
/// D = (1 + 1/(2r)) x̂_0(t) − 1/(2r) x̂_0(t') with r = (λ_t − λ_{t'})/h given the previous
/// step's (t', x̂_0(t')), else D = x̂_0(t) (first order; also the last step, to s = 0, where x_0 = x̂_0(t)).
pub fn dpm_solver_2m_step(
    schedule: &NoiseSchedule,
    t: usize,
    s: usize,
    x_t: &[f32],
    x0_t: &[f32],
    previous: Option<(usize, &[f32])>,
) -> Result<Vec<f32>, SamplerError> {
    check_pair(schedule, t, s)?;
    check_len("x̂_0", x0_t, x_t.len())?;
    if s == 0 {
        return Ok(x0_t.to_vec());
    }
    let (a_t, a_s) = (alpha_bar(schedule, t), alpha_bar(schedule, s));
    let h = half_log_snr(schedule, s) - half_log_snr(schedule, t);
    let a = ((1.0 - a_s) / (1.0 - a_t)).sqrt();
    let b = -a_s.sqrt() * ((-h).exp() - 1.0);
    match previous {
        None => Ok(combine(a, x_t, b, x0_t, None)),
        Some((t_prev, x0_prev)) => {
            if t_prev <= t {
                return Err(SamplerError::InvalidTimesteps(format!(
                    "the previous step t' = {t_prev} must be above t = {t}"
                )));
            }
            check_len("the previous x̂_0", x0_prev, x_t.len())?;
            let r = (half_log_snr(schedule, t) - half_log_snr(schedule, t_prev)) / h;
            let (b0, b1) = ((b * (1.0 + 0.5 / r)) as f32, (-b * 0.5 / r) as f32);
            let a = a as f32;
            Ok(x_t
                .iter()
                .zip(x0_t.iter().zip(x0_prev))
                .map(|(&x, (&d0, &d1))| x * a + d0 * b0 + d1 * b1)
                .collect())
        }
    }
}

fn check_eta(eta: f64) -> Result<(), SamplerError> {
    if (0.0..=1.0).contains(&eta) {
        Ok(())
    } else {
        Err(SamplerError::InvalidEta(eta))
    }
}

/// A sampler over a sub-sequence of the steps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Solver {
    /// DDIM with noise η ∈ [0, 1] ([`ddim_step`]).
    Ddim {
        /// 0: deterministic; 1 over every step: DDPM with σ² = β̃.
        eta: f64,
    },
    /// The probability-flow ODE, Euler ([`euler_step`]).
    Euler,
    /// The probability-flow ODE, Heun (second order; [`euler_step`] then [`heun_step`], Euler on the last step).
    Heun,
    /// DPM-Solver++(2M) ([`dpm_solver_2m_step`]).
    DpmSolver2M,
}

impl Solver {
    /// The model evaluations of a run over `k` steps: k, or 2k − 1 for Heun.
    pub fn model_evaluations(&self, k: usize) -> usize {
        match self {
            Solver::Heun => (2 * k).saturating_sub(1),
            _ => k,
        }
    }

    /// Whether the sampler draws noise after x_T.
    fn is_stochastic(&self) -> bool {
        matches!(self, Solver::Ddim { eta } if *eta > 0.0)
    }
}

fn check_timesteps(schedule: &NoiseSchedule, steps: &[usize]) -> Result<(), SamplerError> {
    let num_steps = schedule.num_steps();
    if steps.first() != Some(&num_steps) {
        return Err(SamplerError::InvalidTimesteps(format!(
            "it must start at T = {num_steps} (it starts at {:?})",
            steps.first()
        )));
    }
    if let Some(w) = steps.windows(2).find(|w| w[1] >= w[0] || w[1] == 0) {
        return Err(SamplerError::InvalidTimesteps(format!(
            "it must decrease strictly within 1..={num_steps}: {} is followed by {}",
            w[0], w[1]
        )));
    }
    Ok(())
}

/// Runs `solver` from x_T ~ N(0, I) over `steps` (strictly decreasing, starting at T,
/// e.g. from [`timesteps`]; the last step goes to 0), keeping snapshots.
///
/// Snapshots: x_T, then the state after steps 0, `snapshot_every`, 2 · `snapshot_every`, …
/// (counted from 0, the cadence of [`crate::sample`] when `steps` is every step), and x_0 (a
/// snapshot's `t` is the index of the state it holds). `config.variance` is DDPM's and
/// unused here. The same seed gives the same bits; DDIM with η > 0 draws its z after x_T
/// from the same RNG in the order of the steps, as [`crate::sample`] does, so DDIM with
/// η = 1 over every step and DDPM with σ² = β̃ use the same noise.
pub fn sample_solver(
    denoiser: &dyn NoisePredictor,
    schedule: &NoiseSchedule,
    guidance: Option<&dyn GuidanceGradient>,
    solver: Solver,
    steps: &[usize],
    config: &SamplerConfig,
) -> Result<SampleRun, SamplerError> {
    solve_with(
        denoiser,
        schedule,
        guidance,
        solver,
        steps,
        config,
        None,
        CHUNK_ROWS,
        &mut |_| {},
    )
}

/// [`sample_solver`], calling `on_step(i)` after its i-th step, i = 1, …, `steps.len()`
/// (for a progress bar): the same draws, the same bits.
pub fn sample_solver_observed(
    denoiser: &dyn NoisePredictor,
    schedule: &NoiseSchedule,
    guidance: Option<&dyn GuidanceGradient>,
    solver: Solver,
    steps: &[usize],
    config: &SamplerConfig,
    on_step: &mut dyn FnMut(usize),
) -> Result<SampleRun, SamplerError> {
    solve_with(
        denoiser, schedule, guidance, solver, steps, config, None, CHUNK_ROWS, on_step,
    )
}

/// [`sample_solver_observed`] with the noise drawn on a second thread (`Some(true)`), here
/// (`Some(false)`) or where that pays (`None`: a second core and at least
/// [`NOISE_THREAD_VALUES`](crate::NOISE_THREAD_VALUES) normals a step), the models
/// evaluated `chunk` rows at a time: the same draws, the same bits whatever `noise_thread`
/// and `chunk`, as [`crate::sample_with`]. [`sample_solver`] and [`sample_solver_observed`]
/// are this with `None` and [`CHUNK_ROWS`].
#[allow(clippy::too_many_arguments)]
pub fn solve_with(
    denoiser: &dyn NoisePredictor,
    schedule: &NoiseSchedule,
    guidance: Option<&dyn GuidanceGradient>,
    solver: Solver,
    steps: &[usize],
    config: &SamplerConfig,
    noise_thread: Option<bool>,
    chunk: usize,
    on_step: &mut dyn FnMut(usize),
) -> Result<SampleRun, SamplerError> {
    validate(denoiser, schedule, guidance, config)?;
    check_timesteps(schedule, steps)?;
    if let Solver::Ddim { eta } = solver {
        check_eta(eta)?;
    }
    let (n, d) = (config.num_samples, denoiser.dim());
    let guidance = guidance.filter(|g| g.scale() > 0.0);
    // ε̂(x, t): the model's noise, shifted by the guidance.
    let eval = |x: &[f32], t: usize| -> Result<Vec<f32>, SamplerError> {
        let (eps, gradient) = model_outputs(denoiser, guidance, x, d, t, chunk)?;
        match guidance.zip(gradient) {
            None => Ok(eps),
            Some((g, gradient)) => {
                let term = GuidanceTerm {
                    scale: g.scale(),
                    gradient: &gradient,
                };
                guided_noise(schedule, t, &eps, Some(term))
            }
        }
    };
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut x: Vec<f32> = standard_normals(&mut rng, n * d)
        .iter()
        .map(|&z| z as f32)
        .collect();
    let mut snapshots = Snapshots::new(config, d, steps[0], &x);
    let draws = if solver.is_stochastic() {
        steps.len() - 1
    } else {
        0
    };
    let parallel = noise_thread.unwrap_or_else(|| crate::noise_thread_pays(n * d));
    with_noise(rng, n * d, draws, parallel && draws > 0, |next_z| {
        let mut previous_x0: Option<(usize, Vec<f32>)> = None;
        for (i, &t) in steps.iter().enumerate() {
            let s = steps.get(i + 1).copied().unwrap_or(0);
            let eps = eval(&x, t)?;
            x = match solver {
                Solver::Ddim { eta } => {
                    let z = (eta > 0.0 && s > 0).then(&mut *next_z);
                    ddim_step(schedule, t, s, eta, &x, &eps, z.as_deref())?
                }
                Solver::Euler => euler_step(schedule, t, s, &x, &eps)?,
                Solver::Heun => {
                    let predicted = euler_step(schedule, t, s, &x, &eps)?;
                    if s == 0 {
                        predicted
                    } else {
                        heun_step(schedule, t, s, &x, &eps, &eval(&predicted, s)?)?
                    }
                }
                Solver::DpmSolver2M => {
                    let x0 = predicted_x0(schedule, t, &x, &eps)?;
                    let prev = previous_x0.as_ref().map(|(tp, v)| (*tp, v.as_slice()));
                    let next = dpm_solver_2m_step(schedule, t, s, &x, &x0, prev)?;
                    previous_x0 = Some((t, x0));
                    next
                }
            };
            if x.iter().any(|v| !v.is_finite()) {
                return Err(SamplerError::NonFinite { t });
            }
            snapshots.record(s, &x, i.is_multiple_of(config.snapshot_every) || s == 0);
            on_step(i + 1);
        }
        Ok(())
    })?;
    Ok(SampleRun {
        dim: d,
        snapshots: snapshots.kept,
        samples: x,
    })
}
