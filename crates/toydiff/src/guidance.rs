//! The `guidance` stage: what the guidance strength trades, for classifier guidance
//! (scale s) and classifier-free guidance (weight w), with the learned nets of a
//! checkpoint and, where the data is a known Gaussian mixture, with the exact scores
//! (the exact classifier, the exact ε*(x_t, t, y) and ε*(x_t, t)): guidance error without
//! learning error. For each setting and class, one guided DDPM run over every step:
//! precision, diversity (the std ratio: the samples' total standard deviation over the
//! class's) and the energy distance to the class. Writes `guidance.json`,
//! `guidance.png` and `guided_free_vs_classifier.png`.

use std::path::Path;
use std::time::Instant;

use models::{ExactMixture, NoisePredictor, NoisyClassifier};
use rand::{rngs::StdRng, SeedableRng};
use sampler::knn::Grid2;
use sampler::metrics::{
    energy_distance, energy_noise_floor, guided_precision, std_ratio, total_std, widen,
    EnergyReference,
};
use sampler::{ClassifierFreeGuidance, ClassifierGuidance, GuidanceGradient, SamplerConfig};
use serde::{Deserialize, Serialize};
use toy_data::GaussianMixture;
use viz::{Color, Curve, LineChart, Panel, PointSeries, Scatter};

use crate::data::{standardise_mixture, Prepared};
use crate::error::{PipelineError, Result};
use crate::forward::pairs;
use crate::observer::{say, Observer};
use crate::output::{OutDir, Timings};
use crate::sample::{
    class_color, data_noise_floor, guidance_scale, knn_labels, original_units, run_plan,
    Checkpoint, SampleSettings, SamplerChoice, DEFAULT_CFG_WEIGHT, KNN,
};

/// The classifier scales s of the sweep (the notebook's is 30).
pub const CLASSIFIER_SCALES: [f64; 6] = [0.0, 1.0, 3.0, 10.0, 30.0, 100.0];
/// The classifier-free weights w of the sweep.
pub const FREE_WEIGHTS: [f64; 6] = [0.0, 0.5, 1.0, 2.0, 4.0, 8.0];
/// The notebook's classifier scale, marked in `guidance.png`.
pub const NOTEBOOK_SCALE: f64 = 30.0;

/// How to sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct GuidanceSettings {
    /// Samples of each run (and of each class's reference sample).
    pub n: usize,
    /// Classifier scales s.
    pub scales: Vec<f64>,
    /// Classifier-free weights w.
    pub weights: Vec<f64>,
    /// Pairs behind each class's energy-distance noise floor.
    pub floor_repeats: usize,
    /// Seed of x_T and the noise (the same for every setting of a class, so the settings
    /// differ by their guidance, not by their draws) and of the references.
    pub seed: u64,
}

impl Default for GuidanceSettings {
    /// 500 samples a run (the notebook's), the six settings of each method, 20
    /// pairs per floor.
    fn default() -> Self {
        Self {
            n: 500,
            scales: CLASSIFIER_SCALES.to_vec(),
            weights: FREE_WEIGHTS.to_vec(),
            floor_repeats: 20,
            seed: 1234,
        }
    }
}

/// One run of the sweep: a method at one setting, one model, one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuidanceRow {
    /// The target class's name.
    pub class: String,
    /// Energy distance of the samples to the class: to a sample of its Gaussian where the
    /// truth is known, else to its held-out rows (standardised units).
    pub energy_distance_to_class: f64,
    /// classifier (scale s) or free (weight w).
    pub method: String,
    /// learned (the checkpoint's nets) or exact (the true mixture's scores).
    pub model: String,
    /// Fraction of samples in the class: the exact posterior's verdict where the truth is
    /// known, else the majority of the 5 nearest training points.
    pub precision: f64,
    /// s for classifier guidance, w for free guidance.
    pub scale: f64,
    /// The samples' total standard deviation √(tr Σ̂) over the class's: 1 is the class's
    /// own spread, below 1 tighter.
    pub std_ratio: f64,
}

/// `guidance.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuidanceReport {
    /// Class names, in class order.
    pub classes: Vec<String>,
    /// The energy distance's noise floor (p95) for each class at n.
    pub class_noise_floor_p95: Vec<f64>,
    /// Samples a run.
    pub n: usize,
    /// What precision, the std ratio and the energy distance compare with.
    pub reference: String,
    /// One row per method × setting × model × class.
    pub rows: Vec<GuidanceRow>,
    /// The seed.
    pub seed: u64,
}

fn check(settings: &GuidanceSettings) -> Result<()> {
    let bad = |m: String| Err(PipelineError::BadGuidance(m));
    if settings.n < 2 {
        return bad(format!("{} samples is too few: use at least 2", settings.n));
    }
    if let Some(v) = settings
        .scales
        .iter()
        .chain(&settings.weights)
        .find(|v| !(v.is_finite() && **v >= 0.0))
    {
        return bad(format!(
            "guidance strength {v} is not allowed: use a number ≥ 0"
        ));
    }
    if settings.floor_repeats == 0 {
        return bad("a noise floor needs at least one pair".into());
    }
    Ok(())
}

/// Where a class's samples are judged: the truth (original units) or the data.
enum Judge {
    /// The true mixture (class c is component c), a reference sample and √(tr Σ_c) per class.
    Truth {
        truth: GaussianMixture,
        references: Vec<Vec<f64>>,
        class_std: Vec<f64>,
    },
    /// The training rows (as a k-NN grid) and labels, and each class's held-out rows
    /// (standardised).
    Data {
        grid: Grid2,
        labels: Vec<u32>,
        heldout: Vec<Vec<f64>>,
        class_std: Vec<f64>,
    },
}

impl Judge {
    /// Precision, std ratio and energy distance of one class's final samples
    /// (standardised f32, as the sampler returns them).
    fn measure(&self, data: &Prepared, class: usize, points: &[f32]) -> (f64, f64, f64) {
        match self {
            Judge::Truth {
                truth,
                references,
                class_std,
            } => {
                let p = original_units(data, points);
                (
                    guided_precision(&p, truth, class),
                    std_ratio(&p, 2, class_std[class]),
                    energy_distance(&p, &references[class], 2),
                )
            }
            Judge::Data {
                grid,
                labels,
                heldout,
                class_std,
            } => {
                let p = widen(points);
                let votes = knn_labels(&p, grid, labels, heldout.len());
                let hits = votes.iter().filter(|&&v| v == class).count();
                (
                    hits as f64 / votes.len().max(1) as f64,
                    std_ratio(&p, 2, class_std[class]),
                    energy_distance(&p, &heldout[class], 2),
                )
            }
        }
    }
}

/// One class's Gaussian of the true mixture (class c is component c).
fn component(truth: &GaussianMixture, c: usize) -> Result<GaussianMixture> {
    Ok(GaussianMixture::new(
        vec![1.0],
        vec![truth.means()[c].clone()],
        vec![truth.covariances()[c].clone()],
    )?)
}

/// A planned run: method, setting, model (n samples guided to each class, in one batch).
struct Planned {
    method: &'static str,
    scale: f64,
    model: &'static str,
}

/// The `guidance` stage on the checkpoint folder `dir`: every run, `guidance.json`,
/// `guidance.png` and `guided_free_vs_classifier.png` in `out`. The data must have labels
/// and the folder a conditional denoiser.
pub fn guidance(
    settings: &GuidanceSettings,
    dir: &Path,
    out: &OutDir,
    obs: &dyn Observer,
    timings: &mut Timings,
) -> Result<GuidanceReport> {
    check(settings)?;
    let checkpoint = Checkpoint::load(dir)?;
    let data = &checkpoint.data;
    let (Some(classifier), Some(conditional)) = (&checkpoint.classifier, &checkpoint.conditional)
    else {
        return Err(PipelineError::BadGuidance(if data.meta.is_labelled() {
            format!(
                "the checkpoint folder {} has no conditional denoiser ({}: it was trained before classifier-free guidance): retrain with `cargo xtask train`",
                dir.display(),
                crate::train::CONDITIONAL_FILE
            )
        } else {
            format!(
                "the data of {} has no labels: guidance needs classes to guide towards",
                dir.display()
            )
        }));
    };
    let schedule = checkpoint.recipe.noise_schedule()?;
    let plan = SamplerChoice::default().plan(schedule.num_steps())?;
    let classes = data.meta.class_names.clone();
    let (n, seed) = (settings.n, settings.seed);

    // The references: the truth where known, else the data.
    let start = Instant::now();
    let truth = data.meta.truth();
    let (judge, floors, reference) = match &truth {
        Some(truth) => {
            let mut references = Vec::new();
            let mut floors = Vec::new();
            let mut class_std = Vec::new();
            for c in 0..classes.len() {
                let g = component(truth, c)?;
                let mut rng = StdRng::seed_from_u64(seed.wrapping_add(30 + c as u64));
                references.push(
                    g.sample(n, &mut rng)
                        .as_slice()
                        .expect("standard layout")
                        .to_vec(),
                );
                floors.push(
                    energy_noise_floor(
                        &g,
                        n,
                        settings.floor_repeats,
                        seed.wrapping_add(40 + c as u64),
                    )
                    .p95,
                );
                let cov = g.covariance_matrix(0); // 2 × 2, row-major: the trace is [0] + [3]
                class_std.push((cov[0] + cov[3]).sqrt());
            }
            let judge = Judge::Truth {
                truth: truth.clone(),
                references,
                class_std,
            };
            (judge, floors, "exact mixture".to_string())
        }
        None => {
            let train = widen(&data.train_standardised());
            let labels = data.labels_of(false).unwrap_or_default();
            let held = widen(&data.heldout_standardised());
            let held_labels = data.labels_of(true).unwrap_or_default();
            let mut heldout = vec![Vec::new(); classes.len()];
            for (p, &l) in held.chunks_exact(2).zip(&held_labels) {
                heldout[l as usize].extend_from_slice(p);
            }
            let class_std: Vec<f64> = heldout.iter().map(|h| total_std(h, 2)).collect();
            // The class's own floor: n training rows of the class against its held-out rows.
            let mut floors = Vec::new();
            for (c, h) in heldout.iter().enumerate() {
                let own: Vec<f64> = train
                    .chunks_exact(2)
                    .zip(&labels)
                    .filter(|(_, &l)| l as usize == c)
                    .flat_map(|(p, _)| p.iter().copied())
                    .collect();
                let floor_n = n.min(own.len() / 2).max(1);
                let reference = EnergyReference::new(h, 2);
                floors.push(
                    data_noise_floor(&own, &reference, floor_n, seed.wrapping_add(40 + c as u64))
                        .p95,
                );
            }
            let judge = Judge::Data {
                grid: Grid2::new(&train),
                labels,
                heldout,
                class_std,
            };
            (
                judge,
                floors,
                format!(
                    "held-out data (standardised units); precision: majority of the {KNN} nearest training points"
                ),
            )
        }
    };
    timings.record("guidance_references", start.elapsed().as_secs_f64());

    // The exact scores, in the networks' (standardised) units, where the truth is known.
    let exact = match &truth {
        Some(t) => Some(ExactMixture::new(
            &standardise_mixture(t, &data.meta.standardizer)?,
            &schedule,
        )?),
        None => None,
    };
    let exact_parts = exact
        .as_ref()
        .map(|e| (e.denoiser(), e.classifier(), e.conditional_denoiser()));
    let mut models: Vec<&'static str> = vec!["learned"];
    if exact_parts.is_some() {
        models.push("exact");
    }
    let mut planned = Vec::new();
    for (method, values) in [
        ("classifier", &settings.scales),
        ("free", &settings.weights),
    ] {
        for &scale in values.iter() {
            for &model in &models {
                planned.push(Planned {
                    method,
                    scale,
                    model,
                });
            }
        }
    }
    // The figure's two runs, when the default scale is not one of the sweep's.
    let figure_scale = guidance_scale(&SampleSettings::default(), data);

    let start = Instant::now();
    // One run per method, setting and model: n samples for each class in one batch (per-
    // sample targets), the same seed for every run, so settings differ by their guidance.
    let targets: Vec<u32> = (0..classes.len() as u32)
        .flat_map(|c| std::iter::repeat_n(c, n))
        .collect();
    let run = |p: &Planned| -> Result<Vec<f32>> {
        let config = SamplerConfig {
            num_samples: targets.len(),
            snapshot_every: usize::MAX,
            seed,
            ..SamplerConfig::default()
        };
        let exact = exact_parts.as_ref().filter(|_| p.model == "exact");
        let (denoiser, classifier_ref): (&dyn NoisePredictor, &dyn NoisyClassifier) = match exact {
            Some((d, c, _)) => (d, c),
            None => (&checkpoint.denoiser, classifier),
        };
        let run = if p.method == "classifier" {
            let g = ClassifierGuidance::new(classifier_ref, targets.clone(), p.scale)?;
            run_plan(
                &plan,
                denoiser,
                &schedule,
                Some(&g as &dyn GuidanceGradient),
                &config,
                &mut |_| {},
            )?
        } else {
            let model: &dyn models::ConditionalNoisePredictor = match exact {
                Some((_, _, c)) => c,
                None => conditional,
            };
            let g = ClassifierFreeGuidance::new(model, targets.clone(), p.scale)?;
            run_plan(&plan, &g, &schedule, None, &config, &mut |_| {})?
        };
        Ok(run.final_points().to_vec())
    };
    let mut extra = Vec::new();
    if !settings.scales.contains(&figure_scale) {
        extra.push(Planned {
            method: "classifier",
            scale: figure_scale,
            model: "learned",
        });
    }
    if !settings.weights.contains(&DEFAULT_CFG_WEIGHT) {
        extra.push(Planned {
            method: "free",
            scale: DEFAULT_CFG_WEIGHT,
            model: "learned",
        });
    }
    let all: Vec<&Planned> = planned.iter().chain(&extra).collect();
    let bar = obs.bar("guidance sweep", all.len() as u64);
    let done = std::sync::atomic::AtomicU64::new(0);
    // Each run is seeded on its own and its values do not depend on the thread that
    // computes it: the threads take the next run as they finish one, and the runs come
    // back in plan order, the same bits on any thread count.
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let next = std::sync::atomic::AtomicUsize::new(0);
    type Measured = (Vec<f32>, Vec<(f64, f64, f64)>);
    let results: Vec<Result<Measured>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (all, run, judge, done, bar, next) = (&all, &run, &judge, &done, &bar, &next);
                scope.spawn(move || {
                    std::iter::from_fn(|| {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        all.get(i).map(|p| (i, p))
                    })
                    .map(|(i, p)| {
                        let r = run(p).map(|points| {
                            let m = points
                                .chunks(2 * n)
                                .enumerate()
                                .map(|(c, class_points)| judge.measure(data, c, class_points))
                                .collect();
                            (points, m)
                        });
                        let d = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                        bar.set(d);
                        (i, r)
                    })
                    .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut out: Vec<(usize, Result<Measured>)> = handles
            .into_iter()
            .flat_map(|h| h.join().expect("a guidance thread panicked"))
            .collect();
        out.sort_by_key(|(i, _)| *i);
        out.into_iter().map(|(_, r)| r).collect()
    });
    bar.finish();
    let results: Vec<Measured> = results.into_iter().collect::<Result<_>>()?;
    timings.record("guidance_runs", start.elapsed().as_secs_f64());

    let mut rows = Vec::new();
    for (p, (_, measured)) in planned.iter().zip(&results) {
        for (c, &(precision, ratio, ed)) in measured.iter().enumerate() {
            rows.push(GuidanceRow {
                class: classes[c].clone(),
                energy_distance_to_class: ed,
                method: p.method.into(),
                model: p.model.into(),
                precision,
                scale: p.scale,
                std_ratio: ratio,
            });
        }
    }
    for r in &rows {
        say!(
            obs,
            "{:>10} {} = {:>5} {:>7} class {}: precision {:.3}, std ratio {:.3}, energy distance {:.4}",
            r.method,
            if r.method == "classifier" { "s" } else { "w" },
            r.scale,
            r.model,
            r.class,
            r.precision,
            r.std_ratio,
            r.energy_distance_to_class
        );
    }
    let report = GuidanceReport {
        classes: classes.clone(),
        class_noise_floor_p95: floors,
        n,
        reference,
        rows,
        seed,
    };

    let start = Instant::now();
    let path = out.write_json("guidance.json", &report)?;
    say!(obs, "wrote {}", path.display());
    let path = out.write("guidance.png", &guidance_figure(&report)?)?;
    say!(obs, "wrote {}", path.display());
    // The learned runs at the default scale and weight, for the side-by-side figure.
    let pick = |method: &str, scale: f64| -> Vec<(usize, Vec<f32>)> {
        all.iter()
            .zip(&results)
            .find(|(p, _)| p.model == "learned" && p.method == method && p.scale == scale)
            .map(|(_, (points, _))| {
                points
                    .chunks(2 * n)
                    .map(<[f32]>::to_vec)
                    .enumerate()
                    .collect()
            })
            .unwrap_or_default()
    };
    let png = side_by_side_figure(
        data,
        (figure_scale, &pick("classifier", figure_scale)),
        (DEFAULT_CFG_WEIGHT, &pick("free", DEFAULT_CFG_WEIGHT)),
    )?;
    let path = out.write("guided_free_vs_classifier.png", &png)?;
    say!(obs, "wrote {}", path.display());
    timings.record("guidance_figures", start.elapsed().as_secs_f64());
    Ok(report)
}

/// The mean over classes of (std ratio, precision) for each setting of one method and
/// model, in setting order.
fn mean_curve(report: &GuidanceReport, method: &str, model: &str) -> Vec<(f64, f64, f64)> {
    let mut scales: Vec<f64> = report
        .rows
        .iter()
        .filter(|r| r.method == method && r.model == model)
        .map(|r| r.scale)
        .collect();
    scales.dedup();
    scales
        .into_iter()
        .map(|s| {
            let rows: Vec<&GuidanceRow> = report
                .rows
                .iter()
                .filter(|r| r.method == method && r.model == model && r.scale == s)
                .collect();
            let k = rows.len().max(1) as f64;
            (
                s,
                rows.iter().map(|r| r.std_ratio).sum::<f64>() / k,
                rows.iter().map(|r| r.precision).sum::<f64>() / k,
            )
        })
        .collect()
}

/// `guidance.png`: precision against diversity (left; mean over classes, one curve per
/// method, learned solid and exact dashed, the notebook's s = 30 and w = 1 marked), and
/// the energy distance to the class against the strength (right; s for classifier
/// guidance, 1 + w for free guidance, where the exact scores make the two the same).
pub fn guidance_figure(report: &GuidanceReport) -> Result<Vec<u8>> {
    let color = |method: &str| {
        if method == "classifier" {
            Color::ORANGE
        } else {
            Color::BLUE
        }
    };
    let mut left = Vec::new();
    let mut right = Vec::new();
    let mut markers = Vec::new();
    let mut dots = Vec::new();
    for model in ["learned", "exact"] {
        for method in ["classifier", "free"] {
            let curve = mean_curve(report, method, model);
            if curve.is_empty() {
                continue;
            }
            let label = format!(
                "{} guidance, {model} ({})",
                if method == "classifier" {
                    "classifier"
                } else {
                    "classifier-free"
                },
                if method == "classifier" {
                    "s = 0 … 100"
                } else {
                    "w = 0 … 8"
                }
            );
            // Classifier guidance at s = 0 is unguided sampling (both clusters: precision
            // ≈ 1/C, spread far above the class's): left out of this panel, named in its title.
            let points: Vec<(f64, f64)> = curve
                .iter()
                .filter(|&&(s, _, _)| method == "free" || s > 0.0)
                .map(|&(_, r, p)| (r, p))
                .collect();
            dots.push(
                PointSeries::new("", points.clone(), color(method)).radius(if model == "exact" {
                    3
                } else {
                    4
                }),
            );
            let mut c = Curve::new(label, points, color(method));
            if model == "exact" {
                c = c.dashed();
            }
            left.push(c);
            // Right: energy distance against the strength, s or 1 + w (s = 0 left out: unguided).
            let strength = |s: f64| if method == "classifier" { s } else { 1.0 + s };
            let ed: Vec<(f64, f64)> = curve
                .iter()
                .map(|&(s, _, _)| {
                    let rows: Vec<f64> = report
                        .rows
                        .iter()
                        .filter(|r| r.method == method && r.model == model && r.scale == s)
                        .map(|r| r.energy_distance_to_class)
                        .collect();
                    (
                        strength(s),
                        rows.iter().sum::<f64>() / rows.len().max(1) as f64,
                    )
                })
                .filter(|&(x, _)| x > 0.0)
                .collect();
            let mut c = Curve::new("", ed, color(method));
            if model == "exact" {
                c = c.dashed();
            }
            right.push(c);
            let at = |s: f64| curve.iter().find(|p| p.0 == s).map(|&(_, r, p)| (r, p));
            if model == "learned" {
                if let (true, Some(p)) = (method == "classifier", at(NOTEBOOK_SCALE)) {
                    markers.push(
                        PointSeries::new("the notebook's s = 30 (learned)", vec![p], Color::RED)
                            .radius(8),
                    );
                }
                if let (true, Some(p)) = (method == "free", at(DEFAULT_CFG_WEIGHT)) {
                    markers.push(
                        PointSeries::new(
                            "w = 1, sample's default (learned)",
                            vec![p],
                            Color::GREEN,
                        )
                        .radius(8),
                    );
                }
            }
        }
    }
    let floor = report.class_noise_floor_p95.iter().sum::<f64>()
        / report.class_noise_floor_p95.len().max(1) as f64;
    let xs: Vec<f64> = right
        .iter()
        .flat_map(|c| c.points.iter().map(|p| p.0))
        .collect();
    let (lo, hi) = xs
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(a, b), &x| (a.min(x), b.max(x)));
    if lo.is_finite() {
        right.insert(
            0,
            Curve::new(
                format!("noise floor p95, n = {}", report.n),
                vec![(lo, floor), (hi, floor)],
                Color::rgb(170, 170, 170),
            )
            .width(3),
        );
    }
    right.push(Curve::new("classifier: x = s", Vec::new(), Color::ORANGE));
    right.push(Curve::new(
        "classifier-free: x = 1 + w",
        Vec::new(),
        Color::BLUE,
    ));
    right.push(Curve::new("learned: solid", Vec::new(), Color::GRAY));
    right.push(Curve::new("exact scores: dashed", Vec::new(), Color::GRAY).dashed());
    // The shown points' range, padded: precision saturates near 1 on well-separated classes.
    let shown: Vec<(f64, f64)> = left.iter().flat_map(|c| c.points.iter().copied()).collect();
    let (x_lo, x_hi, y_lo) = shown
        .iter()
        .fold((f64::INFINITY, 0.0f64, 1.0f64), |(a, b, c), &(x, y)| {
            (a.min(x), b.max(x), c.min(y))
        });
    let pad = 0.1 * (x_hi - x_lo).max(0.05);
    let x_range = x_lo.is_finite().then_some((x_lo - pad, x_hi + pad));
    let y_lo = (y_lo - 0.1 * (1.0 - y_lo)).min(0.98);
    dots.extend(markers);
    let unguided: Vec<&GuidanceRow> = report
        .rows
        .iter()
        .filter(|r| r.method == "classifier" && r.scale == 0.0 && r.model == "learned")
        .collect();
    if !unguided.is_empty() {
        let k = unguided.len() as f64;
        left.push(Curve::new(
            format!(
                "s = 0 (unguided): precision {:.2}, std ratio {:.1}, off the chart",
                unguided.iter().map(|r| r.precision).sum::<f64>() / k,
                unguided.iter().map(|r| r.std_ratio).sum::<f64>() / k
            ),
            Vec::new(),
            Color::GRAY,
        ));
    }
    let panels = [
        Panel::Line(LineChart {
            title: format!(
                "Precision against diversity (mean over {} classes, n = {} a class)",
                report.classes.len(),
                report.n
            ),
            x_label: "std ratio: samples' spread / class's (diversity)".into(),
            y_label: "precision: fraction in the target class".into(),
            curves: left,
            markers: dots,
            x_range,
            y_range: Some((y_lo, 1.0 + 0.1 * (1.0 - y_lo))),
            ..LineChart::default()
        }),
        Panel::Line(LineChart {
            title: "Energy distance to the class against guidance strength".into(),
            x_label: "strength: s (classifier) or 1 + w (free), log scale".into(),
            y_label: "energy distance to the class (mean over classes)".into(),
            curves: right,
            log_x: true,
            ..LineChart::default()
        }),
    ];
    Ok(viz::render_png(&panels, 2, 1600, 700)?)
}

/// `guided_free_vs_classifier.png`: the final samples of classifier guidance at scale s
/// (left) and of classifier-free guidance at weight w (right), learned nets, every class,
/// over the data.
pub fn side_by_side_figure(
    data: &Prepared,
    classifier: (f64, &[(usize, Vec<f32>)]),
    free: (f64, &[(usize, Vec<f32>)]),
) -> Result<Vec<u8>> {
    let original: Vec<(f64, f64)> = data
        .points
        .rows()
        .into_iter()
        .map(|r| (r[0], r[1]))
        .collect();
    let (x_range, y_range) = data.axes();
    let names = &data.meta.column_names;
    let c = data.meta.class_names.len();
    let panel = |title: String, runs: &[(usize, Vec<f32>)]| {
        let mut series = vec![
            PointSeries::new("Original data", original.clone(), Color::BLACK)
                .alpha(0.25)
                .radius(2),
        ];
        for (class, points) in runs {
            series.push(
                PointSeries::new(
                    format!("Guided to class {}", data.meta.class_names[*class]),
                    pairs(&original_units(data, points)),
                    class_color(*class, c),
                )
                .alpha(0.6)
                .radius(3),
            );
        }
        Panel::Scatter(Scatter {
            title,
            x_label: names[0].clone(),
            y_label: names[1].clone(),
            x_range,
            y_range,
            series,
        })
    };
    let panels = [
        panel(
            format!("Classifier guidance, s = {}", classifier.0),
            classifier.1,
        ),
        panel(format!("Classifier-free guidance, w = {}", free.0), free.1),
    ];
    Ok(viz::render_png(&panels, 2, 1200, 600)?)
}
