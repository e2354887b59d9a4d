//! The `samplers` stage: the cost/quality frontier of every sampler. For each sampler
//! and K ∈ {5, 10, 20, 50, 100, 250, 500} (K ≤ T; DDPM at K = T only), unguided, with the
//! learned denoiser of a checkpoint and with the exact score of the true mixture
//! ([`models::ExactMixture`]): the energy distance and the 2-Wasserstein distance of
//! the samples to a fresh sample of the true mixture, each beside its noise floor at the
//! same size, the seconds and the model evaluations of the run. Writes `samplers.json`,
//! `samplers.png` (distance against model evaluations) and `trajectories.png` (the
//! paths of a few points from one x_T under DDPM and under the probability-flow ODE).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use models::{ExactMixture, NoisePredictor};
use rand::{rngs::StdRng, SeedableRng};
use sampler::metrics::{energy_distance, energy_noise_floor, w2_noise_floor, wasserstein2, widen};
use sampler::{SampleRun, SamplerConfig};
use serde::{Deserialize, Serialize};
use viz::{Color, Curve, LineChart, Panel, PointSeries};

use crate::data::{standardise_mixture, Prepared};
use crate::error::{PipelineError, Result};
use crate::metrics::FloorMetrics;
use crate::observer::{say, Observer};
use crate::output::{OutDir, Timings};
use crate::sample::{run_plan, Checkpoint, SamplerChoice, SamplerKind, SamplerPlan};

/// The step counts K of the frontier (those ≤ T run).
pub const FRONTIER_STEPS: [usize; 7] = [5, 10, 20, 50, 100, 250, 500];

/// How to measure the frontier.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplersSettings {
    /// Samples of each run, and of the reference sample of the true mixture.
    pub n: usize,
    /// Points of each side of the 2-Wasserstein distance (the first of the n; exact
    /// optimal transport is O(n³)).
    pub w2_n: usize,
    /// Independent pairs behind each noise floor.
    pub floor_repeats: usize,
    /// The step counts K (those above T are left out).
    pub steps: Vec<usize>,
    /// Points whose paths `trajectories.png` draws.
    pub trajectories: usize,
    /// Seed of x_T (the same for every run), of the noise and of the reference samples.
    pub seed: u64,
}

impl Default for SamplersSettings {
    /// 5,000 samples, W2 on 1,000 of them, 40 pairs per floor (as `sample`'s; with 20,
    /// the p95, the 19th of 20 values, moved by a factor 3 between seeds), every K, 8 paths.
    fn default() -> Self {
        Self {
            n: 5000,
            w2_n: 1000,
            floor_repeats: 40,
            steps: FRONTIER_STEPS.to_vec(),
            trajectories: 8,
            seed: 1234,
        }
    }
}

/// One run of the frontier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrontierRow {
    /// Energy distance of the n samples to the reference sample.
    pub energy_distance: f64,
    /// learned (the checkpoint's denoiser) or exact (the true mixture's score).
    pub model: String,
    /// Denoiser evaluations of the run.
    pub model_evaluations: usize,
    /// The energy distance's noise floor (p95) at n.
    pub noise_floor_p95: f64,
    /// The sampler: ddpm, ddim (η = 0), euler, heun, dpm-solver.
    pub sampler: String,
    /// Wall seconds of the sampling run alone.
    pub seconds: f64,
    /// Solver steps K.
    pub steps: usize,
    /// 2-Wasserstein distance of the first w2_n samples to as many reference points.
    pub w2: f64,
    /// Its noise floor (p95) at w2_n.
    pub w2_floor_p95: f64,
}

impl FrontierRow {
    /// Whether the energy distance is within its noise floor (≤ p95).
    pub fn at_floor(&self) -> bool {
        self.energy_distance <= self.noise_floor_p95
    }
}

/// `samplers.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SamplersReport {
    /// The energy-distance noise floor at n.
    pub energy_noise_floor: FloorMetrics,
    /// For each model, then each sampler: the fewest model evaluations whose energy
    /// distance is within the floor's p95 of DDPM's over every step with the same model
    /// (null: none of the K tried).
    pub fewest_evaluations_matching_ddpm: BTreeMap<String, BTreeMap<String, Option<usize>>>,
    /// For each model, then each sampler: the fewest model evaluations whose energy
    /// distance is within the floor (null: none of the K tried).
    pub fewest_evaluations_to_floor: BTreeMap<String, BTreeMap<String, Option<usize>>>,
    /// Samples a run.
    pub n: usize,
    /// One row per sampler × K × model.
    pub rows: Vec<FrontierRow>,
    /// The seed.
    pub seed: u64,
    /// The diffusion's T.
    pub t: usize,
    /// The 2-Wasserstein noise floor at w2_n.
    pub w2_noise_floor: FloorMetrics,
    /// Points of each side of W2.
    pub w2_n: usize,
}

/// The runs of the frontier, in order: DDPM at K = T, then each solver at each K ≤ T.
pub fn frontier_plans(steps: &[usize], num_steps: usize) -> Result<Vec<SamplerPlan>> {
    let mut plans = vec![SamplerChoice::new(SamplerKind::Ddpm).plan(num_steps)?];
    for kind in &SamplerKind::ALL[1..] {
        for &k in steps.iter().filter(|&&k| k <= num_steps) {
            let choice = SamplerChoice {
                steps: Some(k),
                ..SamplerChoice::new(*kind)
            };
            plans.push(choice.plan(num_steps)?);
        }
    }
    Ok(plans)
}

fn check(settings: &SamplersSettings) -> Result<()> {
    let bad = |m: String| Err(PipelineError::BadSampler(m));
    if settings.n < 2 {
        return bad(format!("{} samples is too few: use at least 2", settings.n));
    }
    if settings.w2_n == 0 || settings.w2_n > settings.n {
        return bad(format!(
            "W2 on {} points is not allowed: use 1 to n = {}",
            settings.w2_n, settings.n
        ));
    }
    if settings.floor_repeats == 0 {
        return bad("a noise floor needs at least one pair".into());
    }
    Ok(())
}

/// Standardised f32 points in the data's units.
fn original_units(data: &Prepared, points: &[f32]) -> Vec<f64> {
    let mut v = widen(points);
    data.meta.standardizer.inverse_slice(&mut v);
    v
}

/// The `samplers` stage on the checkpoint folder `dir`: every run, `samplers.json`,
/// `samplers.png` and `trajectories.png` in `out`. The data must have a known true
/// mixture (the notebook's two clusters, or another built-in mixture).
pub fn samplers(
    settings: &SamplersSettings,
    dir: &Path,
    out: &OutDir,
    obs: &dyn Observer,
    timings: &mut Timings,
) -> Result<SamplersReport> {
    check(settings)?;
    let checkpoint = Checkpoint::load(dir)?;
    let data = &checkpoint.data;
    let truth = data.meta.truth().ok_or_else(|| {
        PipelineError::BadSampler(format!(
            "the checkpoint in {} is of data without a known true distribution: the frontier needs one (train on the notebook's two-clusters)",
            dir.display()
        ))
    })?;
    let schedule = checkpoint.recipe.noise_schedule()?;
    let num_steps = schedule.num_steps();
    let plans = frontier_plans(&settings.steps, num_steps)?;
    // The exact score in the networks' (standardised) units.
    let exact = ExactMixture::new(
        &standardise_mixture(&truth, &data.meta.standardizer)?,
        &schedule,
    )?;
    let exact_denoiser = exact.denoiser();
    let (n, seed) = (settings.n, settings.seed);

    let start = Instant::now();
    let reference = truth.sample(n, &mut StdRng::seed_from_u64(seed.wrapping_add(1)));
    let reference = reference.as_slice().expect("standard layout").to_vec();
    let floor = energy_noise_floor(&truth, n, settings.floor_repeats, seed.wrapping_add(2));
    let w2_floor = w2_noise_floor(
        &truth,
        settings.w2_n,
        settings.floor_repeats,
        seed.wrapping_add(3),
    );
    timings.record("samplers_floors", start.elapsed().as_secs_f64());
    say!(
        obs,
        "noise floors: energy distance p95 {:.5} at n = {n}, W2 p95 {:.4} at n = {} ({} pairs each)",
        floor.p95,
        w2_floor.p95,
        settings.w2_n,
        settings.floor_repeats
    );

    let config = SamplerConfig {
        num_samples: n,
        snapshot_every: usize::MAX,
        seed,
        ..SamplerConfig::default()
    };
    let models: [(&str, &dyn NoisePredictor); 2] = [
        ("learned", &checkpoint.denoiser),
        ("exact", &exact_denoiser),
    ];
    // Every run first (the networks use every core on 5,000 rows), then the distances
    // of all runs on all cores: each value is computed exactly as on one thread.
    let mut runs = Vec::new();
    for (model, denoiser) in models {
        for plan in &plans {
            let what = format!("{model} {} K = {}", plan.kind.name(), plan.steps());
            let bar = obs.bar(&what, plan.steps() as u64);
            let start = Instant::now();
            let run = run_plan(plan, denoiser, &schedule, None, &config, &mut |i| {
                bar.set(i as u64)
            });
            let seconds = start.elapsed().as_secs_f64();
            bar.finish();
            runs.push((
                model,
                plan,
                seconds,
                original_units(data, run?.final_points()),
            ));
        }
    }
    timings.record("samplers_runs", start.elapsed().as_secs_f64());
    let start = Instant::now();
    let w = 2 * settings.w2_n;
    let measure =
        |(model, plan, seconds, points): &(&str, &SamplerPlan, f64, Vec<f64>)| FrontierRow {
            energy_distance: energy_distance(points, &reference, 2),
            model: model.to_string(),
            model_evaluations: plan.model_evaluations(),
            noise_floor_p95: floor.p95,
            sampler: plan.kind.name().into(),
            seconds: *seconds,
            steps: plan.steps(),
            w2: wasserstein2(&points[..w], &reference[..w], 2),
            w2_floor_p95: w2_floor.p95,
        };
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let rows: Vec<FrontierRow> = std::thread::scope(|scope| {
        // Run i goes to thread i mod threads; the rows come back in run order.
        let handles: Vec<_> = (0..threads)
            .map(|k| {
                let (runs, measure) = (&runs, &measure);
                scope.spawn(move || {
                    runs.iter()
                        .enumerate()
                        .filter(|(i, _)| i % threads == k)
                        .map(|(i, r)| (i, measure(r)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut rows: Vec<(usize, FrontierRow)> = handles
            .into_iter()
            .flat_map(|h| h.join().expect("a distance thread panicked"))
            .collect();
        rows.sort_by_key(|(i, _)| *i);
        rows.into_iter().map(|(_, r)| r).collect()
    });
    for row in &rows {
        say!(
            obs,
            "{:>7} {:<10} K = {:>3} ({:>3} evaluations, {:.2} s): energy distance {:.5}{}, W2 {:.4}",
            row.model,
            row.sampler,
            row.steps,
            row.model_evaluations,
            row.seconds,
            row.energy_distance,
            if row.at_floor() { " (at the floor)" } else { "" },
            row.w2
        );
    }
    timings.record("samplers_distances", start.elapsed().as_secs_f64());

    let fewest_where = |keep: &dyn Fn(&FrontierRow) -> bool| {
        let mut fewest: BTreeMap<String, BTreeMap<String, Option<usize>>> = BTreeMap::new();
        for (model, _) in models {
            let per_sampler = fewest.entry(model.into()).or_default();
            for kind in SamplerKind::ALL {
                let best = rows
                    .iter()
                    .filter(|r| r.model == model && r.sampler == kind.name() && keep(r))
                    .map(|r| r.model_evaluations)
                    .min();
                per_sampler.insert(kind.name().into(), best);
            }
        }
        fewest
    };
    let ddpm_distance = |model: &str| {
        rows.iter()
            .find(|r| r.model == model && r.sampler == SamplerKind::Ddpm.name())
            .map_or(f64::NAN, |r| r.energy_distance)
    };
    let fewest = fewest_where(&|r| r.at_floor());
    let matching =
        fewest_where(&|r| (r.energy_distance - ddpm_distance(&r.model)).abs() <= r.noise_floor_p95);
    let report = SamplersReport {
        energy_noise_floor: floor.into(),
        fewest_evaluations_matching_ddpm: matching,
        fewest_evaluations_to_floor: fewest,
        n,
        rows,
        seed,
        t: num_steps,
        w2_noise_floor: w2_floor.into(),
        w2_n: settings.w2_n,
    };

    let start = Instant::now();
    let path = out.write_json("samplers.json", &report)?;
    say!(obs, "wrote {}", path.display());
    let path = out.write("samplers.png", &frontier_figure(&report)?)?;
    say!(obs, "wrote {}", path.display());
    let paths = trajectories(&checkpoint, settings)?;
    let path = out.write("trajectories.png", &trajectories_figure(data, &paths)?)?;
    say!(obs, "wrote {}", path.display());
    timings.record("samplers_figures", start.elapsed().as_secs_f64());
    Ok(report)
}

/// The colour of each sampler in the figures.
fn sampler_color(kind: &str) -> Color {
    let i = SamplerKind::ALL
        .iter()
        .position(|k| k.name() == kind)
        .unwrap_or(0);
    [
        Color::BLACK,
        Color::BLUE,
        Color::ORANGE,
        Color::RED,
        Color::GREEN,
    ][i]
}

/// `samplers.png`: energy distance (left, linear, clipped to the floor's neighbourhood)
/// and W2 (right, log) against model evaluations (log), a line per sampler, solid for
/// the learned nets and dashed for the exact score, the noise floors in grey.
pub fn frontier_figure(report: &SamplersReport) -> Result<Vec<u8>> {
    let evaluations: Vec<f64> = report
        .rows
        .iter()
        .map(|r| r.model_evaluations as f64)
        .collect();
    let lo = evaluations.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = evaluations.iter().copied().fold(0.0, f64::max);
    let x_range = (lo / 1.3, hi * 1.3);
    // Unlabelled data curves; the legend names each colour once, then the two styles.
    let curves = |value: fn(&FrontierRow) -> f64| -> Vec<Curve> {
        let mut curves = Vec::new();
        for model in ["learned", "exact"] {
            for kind in SamplerKind::ALL {
                let mut points: Vec<(f64, f64)> = report
                    .rows
                    .iter()
                    .filter(|r| r.model == model && r.sampler == kind.name())
                    .map(|r| (r.model_evaluations as f64, value(r)))
                    .collect();
                if points.is_empty() {
                    continue;
                }
                let mut width = 2;
                if kind == SamplerKind::Ddpm {
                    // One K only: DDPM's level across the chart, to compare with.
                    let y = points[0].1;
                    points = vec![(x_range.0, y), (x_range.1, y)];
                    width = 1;
                }
                let mut curve = Curve::new("", points, sampler_color(kind.name())).width(width);
                if model == "exact" {
                    curve = curve.dashed();
                }
                curves.push(curve);
            }
        }
        for kind in SamplerKind::ALL {
            let label = match kind {
                SamplerKind::Ddpm => format!("ddpm, {} steps (level)", report.t),
                SamplerKind::Ddim => "ddim η = 0 (under euler: the same step)".into(),
                _ => kind.name().into(),
            };
            curves.push(Curve::new(label, Vec::new(), sampler_color(kind.name())));
        }
        curves.push(Curve::new("learned nets: solid", Vec::new(), Color::GRAY));
        curves.push(Curve::new("exact score: dashed", Vec::new(), Color::GRAY).dashed());
        curves
    };
    let band = |lo: f64, hi: f64, n: usize| {
        [
            Curve::new(
                format!("noise floor p95 (mean below), n = {n}"),
                vec![(x_range.0, hi), (x_range.1, hi)],
                Color::rgb(170, 170, 170),
            )
            .width(4),
            Curve::new(
                "",
                vec![(x_range.0, lo), (x_range.1, lo)],
                Color::rgb(170, 170, 170),
            )
            .width(1),
        ]
    };
    let ed = &report.energy_noise_floor;
    let mut left = curves(|r| r.energy_distance);
    left.splice(0..0, band(ed.mean, ed.p95, report.n));
    let w2 = &report.w2_noise_floor;
    let mut right = curves(|r| r.w2);
    right.splice(0..0, band(w2.mean, w2.p95, report.w2_n));
    let w2_values = report.rows.iter().map(|r| r.w2).chain([w2.mean, w2.p95]);
    let (w2_lo, w2_hi) = w2_values.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let panels = [
        Panel::Line(LineChart {
            title: format!(
                "Energy distance to the true mixture, {} samples (clipped above)",
                report.n
            ),
            x_label: "model evaluations (log scale)".into(),
            y_label: "energy distance".into(),
            curves: left,
            x_range: Some(x_range),
            // The floor's neighbourhood and the learned nets' level; far-off K leave the top.
            y_range: Some((-2.0 * ed.p95.abs(), 30.0 * ed.p95.abs())),
            log_x: true,
            ..LineChart::default()
        }),
        Panel::Line(LineChart {
            title: format!(
                "2-Wasserstein distance, {} of the samples (log scale)",
                report.w2_n
            ),
            x_label: "model evaluations (log scale)".into(),
            y_label: "W2".into(),
            curves: right,
            x_range: Some(x_range),
            // Room above the curves for the legend.
            y_range: Some((w2_lo / 1.15, w2_hi * 3.0)),
            log_x: true,
            log_y: true,
            ..LineChart::default()
        }),
    ];
    Ok(viz::render_png(&panels, 2, 1600, 850)?)
}

/// The paths of the first `settings.trajectories` points from one x_T: DDPM over every
/// step, and Heun over 50 steps (min(50, T)), with the learned denoiser.
pub fn trajectories(
    checkpoint: &Checkpoint,
    settings: &SamplersSettings,
) -> Result<[(SamplerPlan, SampleRun); 2]> {
    let schedule = checkpoint.recipe.noise_schedule()?;
    let config = SamplerConfig {
        num_samples: settings.trajectories.max(1),
        snapshot_every: 1,
        seed: settings.seed,
        ..SamplerConfig::default()
    };
    let run = |choice: SamplerChoice| -> Result<(SamplerPlan, SampleRun)> {
        let plan = choice.plan(schedule.num_steps())?;
        let run = run_plan(
            &plan,
            &checkpoint.denoiser,
            &schedule,
            None,
            &config,
            &mut |_| {},
        )?;
        Ok((plan, run))
    };
    Ok([
        run(SamplerChoice::new(SamplerKind::Ddpm))?,
        run(SamplerChoice::new(SamplerKind::Heun))?,
    ])
}

/// `trajectories.png`: each point's path from x_T (a line per point, one colour per point
/// in both panels; a small black dot where it starts at x_T, a larger one where it
/// ends at x_0) under DDPM (left) and the probability-flow ODE (right).
pub fn trajectories_figure(data: &Prepared, paths: &[(SamplerPlan, SampleRun)]) -> Result<Vec<u8>> {
    let (x_range, y_range) = data.axes();
    let names = &data.meta.column_names;
    let panels: Vec<Panel> = paths
        .iter()
        .map(|(plan, run)| {
            let states: Vec<Vec<f64>> = run
                .snapshots
                .iter()
                .map(|s| original_units(data, &s.points))
                .collect();
            let points = states.first().map_or(0, |s| s.len() / 2);
            let curves = (0..points)
                .map(|i| {
                    let path = states.iter().map(|s| (s[2 * i], s[2 * i + 1])).collect();
                    let label = if i == 0 {
                        format!("{points} points from the same x_T")
                    } else {
                        String::new()
                    };
                    Curve::new(label, path, viz::palette(i)).width(1)
                })
                .collect();
            let ends = |state: Option<&Vec<f64>>| -> Vec<(f64, f64)> {
                state.map_or_else(Vec::new, |s| {
                    s.chunks_exact(2).map(|p| (p[0], p[1])).collect()
                })
            };
            let markers = vec![
                PointSeries::new("x_T (start)", ends(states.first()), Color::BLACK).radius(3),
                PointSeries::new("x_0 (sample)", ends(states.last()), Color::BLACK).radius(5),
            ];
            let title = match plan.kind {
                SamplerKind::Ddpm => format!(
                    "DDPM (stochastic), {} steps: paths from x_T to x_0",
                    plan.steps()
                ),
                _ => format!(
                    "Probability-flow ODE (Heun), {} steps, {} evaluations",
                    plan.steps(),
                    plan.model_evaluations()
                ),
            };
            Panel::Line(LineChart {
                title,
                x_label: names[0].clone(),
                y_label: names[1].clone(),
                curves,
                markers,
                x_range: Some(x_range),
                y_range: Some(y_range),
                ..LineChart::default()
            })
        })
        .collect();
    Ok(viz::render_png(&panels, 2, 1400, 650)?)
}
