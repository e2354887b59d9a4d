//! The `likelihood` stage: the diffusion model as a density, beside the models the
//! notebook starts from. On held-out points (fresh draws of the true distribution where
//! there is one, else the data's held-out rows), the mean log-likelihood in nats per
//! point and the seconds it took, for the true density (where known), one Normal
//! (maximum likelihood), the Gaussian mixture with k chosen by BIC (`toy_data`), the
//! diffusion model by the probability-flow ODE and its ELBO
//! ([`sampler::likelihood`]), and, where the truth is known, the same ODE with the exact
//! score (the integrator's own error). Every number is a density over the data's own
//! units: the networks see standardised data z = (x − m)/s, so the diffusion model's
//! log p(x) = log p(z) − Σ_j log s_j (the log-Jacobian of the standardisation).
//! Writes `likelihood.json`, `likelihood.md`, `density.png` and `score_field.png`.

use std::path::Path;
use std::time::Instant;

use models::{ExactMixture, NoisePredictor};
use ndarray::Array2;
use rand::{rngs::StdRng, SeedableRng};
use sampler::likelihood::{elbo, ode_log_likelihood, ode_model_evaluations};
use sampler::ReverseVariance;
use schedule::NoiseSchedule;
use serde::{Deserialize, Serialize};
use toy_data::GaussianMixture;
use viz::{Color, Curve, HeatMap, LineChart, Panel};

use crate::data::{standardise_mixture, Prepared};
use crate::error::{PipelineError, Result};
use crate::observer::{say, Observer};
use crate::output::{OutDir, Timings};
use crate::sample::Checkpoint;

/// How to measure the likelihoods.
#[derive(Debug, Clone, PartialEq)]
pub struct LikelihoodSettings {
    /// Held-out points: fresh draws of the true distribution where there is one, else
    /// at most this many of the held-out rows.
    pub n: usize,
    /// K, the ODE's grid steps (2K − 1 model evaluations per point).
    pub steps: usize,
    /// The reverse variance σ_t² of the chain whose ELBO is reported.
    pub variance: ReverseVariance,
    /// Cells per side of `density.png`'s grid (each cell one ODE log-likelihood).
    pub grid: usize,
    /// Arrows per side of `score_field.png`.
    pub arrows: usize,
    /// The largest k tried for the Gaussian mixture (BIC chooses among 1..=max_k).
    pub max_k: usize,
    /// Seed of the fresh points, the ELBO's noise and the mixture fits.
    pub seed: u64,
}

impl Default for LikelihoodSettings {
    /// 10,000 points, K = 50 (99 evaluations: 0.004 nats from the exact density with
    /// the exact score, BENCHMARKS.md), the notebook's σ_t² = β_t, a 60 × 60 density
    /// grid, 15 × 15 arrows, k up to 8 (the eight Gaussians), seed 1234.
    fn default() -> Self {
        Self {
            n: 10_000,
            steps: 50,
            variance: ReverseVariance::Beta,
            grid: 60,
            arrows: 15,
            max_k: 8,
            seed: 1234,
        }
    }
}

impl LikelihoodSettings {
    /// The cheap settings of `cargo xtask all`: 500 points, a 40 × 40 grid, k up to 4
    /// (the gmm stage's range; the mixture fits are the stage's largest cost).
    pub fn quick() -> Self {
        Self {
            n: 500,
            grid: 40,
            max_k: 4,
            ..Self::default()
        }
    }
}

/// One model's row of `likelihood.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelLikelihood {
    /// true, normal, gmm, diffusion-ode, diffusion-elbo, exact-score-ode.
    pub name: String,
    /// Mean log-likelihood over the points, in nats per point (the ELBO: its mean bound).
    pub mean_log_likelihood: f64,
    /// Wall seconds: fitting (Normal, GMM) plus evaluating every point (the only field of
    /// the file that differs between two runs with one seed).
    pub seconds: f64,
    /// Standard error of the mean over the points (their spread / √n; for the ELBO it
    /// includes its Monte Carlo noise).
    pub std_error: f64,
}

/// `likelihood.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LikelihoodReport {
    /// How many points each mean is over.
    pub points: usize,
    /// What the numbers are.
    pub units: String,
    /// One row per model, in the order above.
    pub models: Vec<ModelLikelihood>,
    /// The data's name.
    pub dataset: String,
    /// Where the points come from: "fresh draws of the true distribution" or "held-out rows".
    pub evaluation_points: String,
    /// The k BIC chose.
    pub gmm_components: usize,
    /// K, the ODE's grid steps.
    pub ode_steps: usize,
    /// Model evaluations (each with its divergence) per point of the ODE: 2K − 1.
    pub ode_model_evaluations: usize,
    /// The chain's reverse variance behind the ELBO: beta or posterior.
    pub elbo_variance: String,
    /// The checkpoints' run id.
    pub run_id: String,
}

impl LikelihoodReport {
    /// The row of a model, if it was measured.
    pub fn model(&self, name: &str) -> Option<&ModelLikelihood> {
        self.models.iter().find(|m| m.name == name)
    }

    /// The table: `likelihood.md` without the seconds (so the file is the same bytes on
    /// every run, as `gmm_comparison.md`), the stage's printout with them.
    pub fn to_markdown(&self, include_seconds: bool) -> String {
        let (head, rule) = if include_seconds {
            (" seconds |", "---:|")
        } else {
            ("", "")
        };
        let mut s = format!(
            "Mean log-likelihood on {} {} of {} ({}).\n\n| model | mean log-likelihood (nats/point) | std. error |{head}\n|---|---:|---:|{rule}\n",
            self.points, self.evaluation_points, self.dataset, self.units
        );
        for m in &self.models {
            s.push_str(&format!(
                "| {} | {:.4} | {:.4} |",
                m.name, m.mean_log_likelihood, m.std_error
            ));
            if include_seconds {
                s.push_str(&format!(" {:.3} |", m.seconds));
            }
            s.push('\n');
        }
        s
    }
}

fn check(settings: &LikelihoodSettings) -> Result<()> {
    let bad = |m: String| Err(PipelineError::BadLikelihood(m));
    if settings.n < 2 {
        return bad(format!("{} points is too few: use at least 2", settings.n));
    }
    if !(2..=400).contains(&settings.grid) {
        return bad(format!(
            "a density grid of {} cells a side is not allowed: use 2 to 400",
            settings.grid
        ));
    }
    if !(2..=100).contains(&settings.arrows) {
        return bad(format!(
            "{} arrows a side is not allowed: use 2 to 100",
            settings.arrows
        ));
    }
    if settings.max_k == 0 {
        return bad("the mixture needs k ≥ 1: use max_k ≥ 1".into());
    }
    Ok(())
}

fn mean_and_std_error(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (m, (var / n).sqrt())
}

/// A row from per-point values, refusing a non-finite mean.
fn row(name: &str, values: &[f64], seconds: f64) -> Result<ModelLikelihood> {
    let (mean, std_error) = mean_and_std_error(values);
    if !mean.is_finite() {
        return Err(PipelineError::BadLikelihood(format!(
            "the {name} log-likelihood is not finite ({mean}): the model assigns the points no density"
        )));
    }
    Ok(ModelLikelihood {
        name: name.into(),
        mean_log_likelihood: mean,
        seconds,
        std_error,
    })
}

/// The diffusion model's densities in the data's units: log p(x) = log p(z) − Σ log s_j.
struct Diffusion<'a> {
    denoiser: &'a dyn NoisePredictor,
    schedule: &'a NoiseSchedule,
    data: &'a Prepared,
    steps: usize,
}

impl Diffusion<'_> {
    fn log_jacobian(&self) -> f64 {
        -self
            .data
            .meta
            .standardizer
            .std
            .iter()
            .map(|s| s.ln())
            .sum::<f64>()
    }

    fn standardised(&self, points: &[f64]) -> Vec<f64> {
        let mut z = points.to_vec();
        self.data.meta.standardizer.transform_slice(&mut z);
        z
    }

    fn ode(&self, points: &[f64]) -> Result<Vec<f64>> {
        let z = self.standardised(points);
        let ode = ode_log_likelihood(self.denoiser, self.schedule, &z, self.steps)?;
        let j = self.log_jacobian();
        Ok(ode.log_likelihood.iter().map(|l| l + j).collect())
    }

    fn elbo(&self, points: &[f64], variance: ReverseVariance, seed: u64) -> Result<Vec<f64>> {
        let z = self.standardised(points);
        let terms = elbo(self.denoiser, self.schedule, &z, variance, seed)?;
        let j = self.log_jacobian();
        Ok(terms.elbo().iter().map(|l| l + j).collect())
    }
}

fn log_densities(m: &GaussianMixture, points: &[f64]) -> Vec<f64> {
    points.chunks_exact(2).map(|x| m.log_pdf(x)).collect()
}

/// The `likelihood` stage on the checkpoint folder `dir` (module docs).
pub fn likelihood(
    settings: &LikelihoodSettings,
    dir: &Path,
    out: &OutDir,
    obs: &dyn Observer,
    timings: &mut Timings,
) -> Result<LikelihoodReport> {
    check(settings)?;
    let checkpoint = Checkpoint::load(dir)?;
    let data = &checkpoint.data;
    let schedule = checkpoint.recipe.noise_schedule()?;
    if !(1..=schedule.num_steps()).contains(&settings.steps) {
        return Err(PipelineError::BadLikelihood(format!(
            "{} ODE steps is not allowed: use 1 to T = {}",
            settings.steps,
            schedule.num_steps()
        )));
    }
    let truth = data.meta.truth();
    let seed = settings.seed;
    let start = Instant::now();
    // The points, in the data's own units.
    let (points, evaluation_points) = match &truth {
        Some(t) => {
            let p = t.sample(settings.n, &mut StdRng::seed_from_u64(seed.wrapping_add(1)));
            (
                p.into_raw_vec_and_offset().0,
                "fresh draws of the true distribution",
            )
        }
        None => {
            let held: Vec<f64> = data
                .points
                .rows()
                .into_iter()
                .zip(&data.heldout)
                .filter(|(_, &h)| h)
                .take(settings.n)
                .flat_map(|(r, _)| r.to_vec())
                .collect();
            if held.len() < 4 {
                return Err(PipelineError::BadLikelihood(format!(
                    "the checkpoint in {} holds {} held-out row(s) and its data has no known true distribution: the likelihoods need at least 2 points to evaluate; retrain with `cargo xtask train`",
                    dir.display(),
                    held.len() / 2
                )));
            }
            (held, "held-out rows")
        }
    };
    let n = points.len() / 2;
    let train: Vec<f64> = data
        .points
        .rows()
        .into_iter()
        .zip(&data.heldout)
        .filter(|(_, &h)| !h)
        .flat_map(|(r, _)| r.to_vec())
        .collect();
    let train = Array2::from_shape_vec((train.len() / 2, 2), train)
        .map_err(|e| PipelineError::BadLikelihood(e.to_string()))?;
    timings.record("likelihood_points", start.elapsed().as_secs_f64());
    say!(
        obs,
        "likelihood of {n} {evaluation_points} of {} (K = {} ODE steps, {} evaluations a point)",
        data.meta.display_name(),
        settings.steps,
        ode_model_evaluations(settings.steps)
    );

    let mut models = Vec::new();
    if let Some(t) = &truth {
        let start = Instant::now();
        let v = log_densities(t, &points);
        models.push(row("true", &v, start.elapsed().as_secs_f64())?);
    }
    let start = Instant::now();
    let normal = toy_data::fit_normal(train.view())?;
    let v = log_densities(&normal, &points);
    models.push(row("normal", &v, start.elapsed().as_secs_f64())?);
    let start = Instant::now();
    // EM needs at least two rows a component (`toy_data::require_rows`): fewer rows, fewer k.
    let max_k = settings.max_k.min(train.nrows() / 2).max(1);
    let gmm = toy_data::choose_k_by_bic(train.view(), max_k, seed)?.mixture;
    let v = log_densities(&gmm, &points);
    models.push(row("gmm", &v, start.elapsed().as_secs_f64())?);

    let diffusion = Diffusion {
        denoiser: &checkpoint.denoiser,
        schedule: &schedule,
        data,
        steps: settings.steps,
    };
    let start = Instant::now();
    let v = diffusion.ode(&points)?;
    models.push(row("diffusion-ode", &v, start.elapsed().as_secs_f64())?);
    let start = Instant::now();
    let v = diffusion.elbo(&points, settings.variance, seed.wrapping_add(2))?;
    models.push(row("diffusion-elbo", &v, start.elapsed().as_secs_f64())?);
    let exact = match &truth {
        Some(t) => Some(ExactMixture::new(
            &standardise_mixture(t, &data.meta.standardizer)?,
            &schedule,
        )?),
        None => None,
    };
    if let Some(exact) = &exact {
        let den = exact.denoiser();
        let exact_diffusion = Diffusion {
            denoiser: &den,
            ..diffusion
        };
        let start = Instant::now();
        let v = exact_diffusion.ode(&points)?;
        models.push(row("exact-score-ode", &v, start.elapsed().as_secs_f64())?);
    }
    for m in &models {
        timings.record(&format!("likelihood_{}", m.name), m.seconds);
    }

    let report = LikelihoodReport {
        points: n,
        units: "nats per point, densities over the data's own units".into(),
        models,
        dataset: data.meta.display_name(),
        evaluation_points: evaluation_points.into(),
        gmm_components: gmm.n_components(),
        ode_steps: settings.steps,
        ode_model_evaluations: ode_model_evaluations(settings.steps),
        elbo_variance: match settings.variance {
            ReverseVariance::Beta => "beta",
            ReverseVariance::Posterior => "posterior",
        }
        .into(),
        run_id: checkpoint.run_id.clone(),
    };
    for line in report.to_markdown(true).lines() {
        say!(obs, "{line}");
    }

    let start = Instant::now();
    let density = density_figure(
        data,
        truth.as_ref(),
        &gmm,
        &diffusion,
        settings.grid,
        &report,
    )?;
    let score = score_field_figure(
        data,
        &checkpoint.denoiser,
        exact.as_ref(),
        &schedule,
        settings.arrows,
    )?;
    timings.record("likelihood_figures", start.elapsed().as_secs_f64());
    let path = out.write_json("likelihood.json", &report)?;
    say!(obs, "wrote {}", path.display());
    let path = out.write("likelihood.md", report.to_markdown(false).as_bytes())?;
    say!(obs, "wrote {}", path.display());
    let path = out.write("density.png", &density)?;
    say!(obs, "wrote {}", path.display());
    let path = out.write("score_field.png", &score)?;
    say!(obs, "wrote {}", path.display());
    Ok(report)
}

/// Cell centres of a g × g grid over `axes` ((x₀, x₁), (y₀, y₁)), row-major pairs, row
/// by row from the bottom: the points at which `density.png` evaluates each density.
pub fn grid_points(axes: ((f64, f64), (f64, f64)), g: usize) -> Vec<f64> {
    let ((x0, x1), (y0, y1)) = axes;
    let mut v = Vec::with_capacity(2 * g * g);
    for i in 0..g {
        for j in 0..g {
            v.push(x0 + (j as f64 + 0.5) * (x1 - x0) / g as f64);
            v.push(y0 + (i as f64 + 0.5) * (y1 - y0) / g as f64);
        }
    }
    v
}

/// Nats below the highest log density that the colour scale of `density.png` spans.
const DENSITY_SPAN: f64 = 12.0;

/// `density.png`: log densities on one grid and one colour scale (the highest value of
/// any panel down to 12 nats below it): the true density (where known), the mixture's,
/// the diffusion model's by the ODE.
fn density_figure(
    data: &Prepared,
    truth: Option<&GaussianMixture>,
    gmm: &GaussianMixture,
    diffusion: &Diffusion<'_>,
    g: usize,
    report: &LikelihoodReport,
) -> Result<Vec<u8>> {
    let axes = data.axes();
    let points = grid_points(axes, g);
    let mut panels: Vec<(String, Vec<f64>)> = Vec::new();
    if let Some(t) = truth {
        panels.push(("true density".into(), log_densities(t, &points)));
    }
    panels.push((
        format!("Gaussian mixture (k = {}, BIC)", gmm.n_components()),
        log_densities(gmm, &points),
    ));
    panels.push((
        format!("diffusion model (ODE, K = {})", report.ode_steps),
        diffusion.ode(&points)?,
    ));
    let hi = panels
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .filter(|v| v.is_finite())
        .fold(f64::NEG_INFINITY, f64::max);
    let hi = if hi.is_finite() { hi.ceil() } else { 0.0 };
    let names = &data.meta.column_names;
    let cells: Vec<Panel> = panels
        .into_iter()
        .map(|(title, values)| {
            Panel::Heat(HeatMap {
                title,
                x_label: names[0].clone(),
                y_label: names[1].clone(),
                x_range: axes.0,
                y_range: axes.1,
                columns: g,
                rows: g,
                values,
                value_range: (hi - DENSITY_SPAN, hi),
                value_label: "log density".into(),
            })
        })
        .collect();
    let width = 560 * cells.len() as u32;
    Ok(viz::render_png(&cells, cells.len(), width, 500)?)
}

/// The steps t at which `score_field.png` draws the score: T/50, T/5 and T/2.
pub fn score_field_steps(num_steps: usize) -> [usize; 3] {
    [
        (num_steps / 50).max(1),
        (num_steps / 5).max(1),
        (num_steps / 2).max(1),
    ]
}

/// `score_field.png`: the learned score −ε_θ(x, t)/√(1 − ᾱ_t) (blue) against the exact
/// one (orange, where the truth is known) on a grid of arrows at three t, in the data's
/// units (∇_x log p_t = ∇_z log p_t / s_j). Arrow lengths are proportional to the score,
/// one scale a panel (the median of the exact, else the learned, magnitudes spans 0.6
/// of the grid spacing), capped at 0.95 spacings so that arrows never overlap.
fn score_field_figure(
    data: &Prepared,
    denoiser: &dyn NoisePredictor,
    exact: Option<&ExactMixture>,
    schedule: &NoiseSchedule,
    a: usize,
) -> Result<Vec<u8>> {
    let axes = data.axes();
    let points = grid_points(axes, a);
    let std = &data.meta.standardizer.std;
    let mut z = points.clone();
    data.meta.standardizer.transform_slice(&mut z);
    let n = points.len() / 2;
    let spacing = ((axes.0 .1 - axes.0 .0) / a as f64).min((axes.1 .1 - axes.1 .0) / a as f64);
    let names = &data.meta.column_names;
    let mut panels = Vec::new();
    for t in score_field_steps(schedule.num_steps()) {
        let root = schedule.sqrt_one_minus_alpha_bar(t);
        let z32: Vec<f32> = z.iter().map(|&v| v as f32).collect();
        let x_t = candle_core::Tensor::from_vec(z32, (n, 2), &candle_core::Device::Cpu)?;
        let eps = denoiser
            .predict_noise(&x_t, t)?
            .to_dtype(candle_core::DType::F64)?
            .flatten_all()?
            .to_vec1::<f64>()?;
        let learned: Vec<(f64, f64)> = eps
            .chunks_exact(2)
            .map(|e| (-e[0] / root / std[0], -e[1] / root / std[1]))
            .collect();
        let exact_scores: Option<Vec<(f64, f64)>> = match exact {
            Some(m) => Some(
                z.chunks_exact(2)
                    .map(|p| m.score(p, t).map(|s| (s[0] / std[0], s[1] / std[1])))
                    .collect::<std::result::Result<_, _>>()?,
            ),
            None => None,
        };
        let mut magnitudes: Vec<f64> = exact_scores
            .as_ref()
            .unwrap_or(&learned)
            .iter()
            .map(|s| s.0.hypot(s.1))
            .collect();
        magnitudes.sort_by(f64::total_cmp);
        let median = magnitudes[magnitudes.len() / 2];
        let scale = if median > 0.0 {
            0.6 * spacing / median
        } else {
            1.0
        };
        let arrows = |scores: &[(f64, f64)]| -> Vec<viz::Arrow> {
            points
                .chunks_exact(2)
                .zip(scores)
                .map(|(p, s)| {
                    let (dx, dy) = (s.0 * scale, s.1 * scale);
                    let len = dx.hypot(dy);
                    let cap = if len > 0.95 * spacing {
                        0.95 * spacing / len
                    } else {
                        1.0
                    };
                    ((p[0], p[1]), (dx * cap, dy * cap))
                })
                .collect()
        };
        let mut curves = Vec::new();
        if let Some(e) = &exact_scores {
            curves.push(Curve::arrows("exact score", &arrows(e), 0.35, Color::ORANGE).width(4));
        }
        curves.push(
            Curve::arrows(
                "learned −ε_θ/√(1−ᾱ_t)",
                &arrows(&learned),
                0.35,
                Color::rgb(0x1f, 0x4e, 0xb4),
            )
            .width(2),
        );
        panels.push(Panel::Line(LineChart {
            title: format!("score ∇log p_t at t = {t} (length × {scale:.3}, capped)"),
            x_label: names[0].clone(),
            y_label: names[1].clone(),
            curves,
            x_range: Some(axes.0),
            y_range: Some(axes.1),
            ..LineChart::default()
        }));
    }
    Ok(viz::render_png(&panels, 3, 1650, 560)?)
}
