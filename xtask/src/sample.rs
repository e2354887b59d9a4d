//! `cargo xtask sample`: DDPM reverse sampling, unguided and guided to each class, from
//! the checkpoint folder `train` wrote (the notebook's section 8): the GIF, the samples
//! as CSV in the data's own units, and their metrics.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use models::{ClassifierNet, DenoiserNet, NoisyClassifier};
use rand::{rngs::StdRng, SeedableRng};
use sampler::metrics::{energy_distance, energy_noise_floor, guided_precision, mode_stats, widen};
use sampler::{
    sample_observed, ClassifierGuidance, GuidanceGradient, ReverseVariance, SampleRun,
    SamplerConfig,
};
use schedule::NoiseSchedule;
use serde_json::{json, Value};
use toy_data::GaussianMixture;
use viz::{Color, Panel, PointSeries, Scatter};

use crate::console::say;
use crate::data::{file_safe, Prepared};
use crate::flags::{default_out, SampleArgs, VarianceArg};
use crate::forward::pairs;
use crate::output::{OutDir, Timings};
use crate::progress;
use crate::train::CHECKPOINTS;

/// Pairs of samples behind each energy-distance noise floor.
const FLOOR_REPEATS: usize = 40;
/// Neighbours voting on a sample's class when no exact posterior exists.
const KNN: usize = 5;

/// The runs of the notebook: unguided, and guided to each class (class index, run).
pub struct Runs {
    pub unguided: SampleRun,
    pub guided: Vec<(usize, SampleRun)>,
}

/// The classes to guide towards: `--classes` by name, else all of them.
fn target_classes(args: &SampleArgs, data: &Prepared) -> anyhow::Result<Vec<u32>> {
    let names = &data.meta.class_names;
    if args.classes.is_empty() {
        return Ok((0..names.len() as u32).collect());
    }
    if names.is_empty() {
        bail!(
            "--classes {} given, but the data has no labels: nothing to guide towards",
            args.classes.join(",")
        );
    }
    args.classes
        .iter()
        .map(|c| {
            names
                .iter()
                .position(|n| n == c)
                .map(|i| i as u32)
                .with_context(|| {
                    format!(
                        "class '{c}' is not one the classifier has: allowed {}",
                        names.join(", ")
                    )
                })
        })
        .collect()
}

/// The checkpoint folder a run reads.
pub fn checkpoint_dir(args: &SampleArgs, out: &OutDir) -> PathBuf {
    args.checkpoints
        .clone()
        .unwrap_or_else(|| out.path(CHECKPOINTS))
}

pub fn run(args: &SampleArgs) -> anyhow::Result<()> {
    let out = OutDir::new(&args.out.clone().unwrap_or_else(default_out))?;
    let mut timings = Timings::default();
    let dir = checkpoint_dir(args, &out);
    let data = Prepared::load(&dir)?;
    let runs = generate(args, &dir, &data, &mut timings)?;
    let start = Instant::now();
    let metrics = evaluate(args, &data, &runs)?;
    timings.record("evaluate", start.elapsed().as_secs_f64());
    let start = Instant::now();
    write_outputs(&out, &data, &runs)?;
    out.merge_json("metrics.json", metrics)?;
    say!("wrote {}", out.path("metrics.json").display());
    timings.record("sample_outputs", start.elapsed().as_secs_f64());
    timings.write(&out)
}

fn read_checkpoint(dir: &Path, name: &str) -> anyhow::Result<Vec<u8>> {
    let path = dir.join(name);
    if !path.is_file() {
        bail!(
            "checkpoint '{}' not found: run `cargo xtask train` first, or pass --checkpoints DIR",
            path.display()
        );
    }
    std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
}

/// Loads the networks and runs the samplers (nothing is written). Samples stay in the
/// networks' standardised units.
pub fn generate(
    args: &SampleArgs,
    dir: &Path,
    data: &Prepared,
    timings: &mut Timings,
) -> anyhow::Result<Runs> {
    let schedule = NoiseSchedule::notebook();
    let t = Some(schedule.num_steps());
    let denoiser = DenoiserNet::from_safetensors(&read_checkpoint(dir, "denoiser.safetensors")?, t)
        .with_context(|| format!("loading {}", dir.join("denoiser.safetensors").display()))?;
    let classifier = if data.meta.is_labelled() {
        let net =
            ClassifierNet::from_safetensors(&read_checkpoint(dir, "classifier.safetensors")?, t)
                .with_context(|| {
                    format!("loading {}", dir.join("classifier.safetensors").display())
                })?;
        if net.num_classes() != data.meta.class_names.len() {
            bail!(
                "the classifier in {} has {} classes but the data has {} ({}): retrain with `cargo xtask train`",
                dir.display(),
                net.num_classes(),
                data.meta.class_names.len(),
                data.meta.class_names.join(", ")
            );
        }
        Some(net)
    } else {
        None
    };
    if denoiser.config().dim != 2 {
        bail!(
            "the denoiser in {} is for {}-D data, expected 2-D",
            dir.display(),
            denoiser.config().dim
        );
    }
    let config = |offset: u64| SamplerConfig {
        num_samples: args.n,
        snapshot_every: args.snapshot_every,
        variance: match args.variance {
            VarianceArg::Beta => ReverseVariance::Beta,
            VarianceArg::Posterior => ReverseVariance::Posterior,
        },
        seed: args.seed.wrapping_add(offset),
    };
    let scale = guidance_scale(args, data);
    let targets = target_classes(args, data)?;
    // One progress bar a run (hidden when stderr is not a terminal).
    let steps = schedule.num_steps();
    let observed = |what: &str, guidance: Option<&dyn GuidanceGradient>, seed_offset: u64| {
        let bar = progress::bar(steps as u64, what);
        let run = sample_observed(
            &denoiser,
            &schedule,
            guidance,
            &config(seed_offset),
            &mut |t| bar.set_position((steps + 1 - t) as u64),
        );
        bar.finish_and_clear();
        run
    };
    let start = Instant::now();
    let unguided = observed("sampling unguided", None, 10)?;
    timings.record("sample_unguided", start.elapsed().as_secs_f64());
    let mut guided = Vec::new();
    if let Some(classifier) = &classifier {
        for &class in &targets {
            let start = Instant::now();
            let g = ClassifierGuidance::one_class(classifier, class, scale, args.n)?;
            let what = format!(
                "sampling guided to {}",
                data.meta.class_names[class as usize]
            );
            let run = observed(&what, Some(&g), 11 + class as u64)?;
            guided.push((class as usize, run));
            timings.record(
                &format!("sample_guided_{class}"),
                start.elapsed().as_secs_f64(),
            );
        }
    }
    say!(
        "sampled {} points × {} steps: unguided{}",
        args.n,
        schedule.num_steps(),
        if guided.is_empty() {
            " (no classifier: the data has no labels)".to_string()
        } else {
            format!(
                " and guided to each of {} classes (scale {scale})",
                guided.len()
            )
        }
    );
    Ok(Runs { unguided, guided })
}

/// The guidance scale: the flag, else the notebook's 30 for its own data and 5 for
/// standardised data (30 pushes samples past the edge of the data there).
pub fn guidance_scale(args: &SampleArgs, data: &Prepared) -> f64 {
    args.scale
        .unwrap_or(if data.meta.is_notebook() { 30.0 } else { 5.0 })
}

/// Standardised f32 points back in the data's units.
fn original_units(data: &Prepared, points: &[f32]) -> Vec<f64> {
    let mut v = widen(points);
    data.meta.standardizer.inverse_slice(&mut v);
    v
}

/// The colour of class c: the notebook's red and green for two classes, else a palette.
fn class_color(c: usize, n_classes: usize) -> Color {
    if n_classes == 2 {
        [Color::RED, Color::GREEN][c]
    } else {
        viz::palette(c)
    }
}

fn write_outputs(out: &OutDir, data: &Prepared, runs: &Runs) -> anyhow::Result<()> {
    let original: Vec<(f64, f64)> = data
        .points
        .rows()
        .into_iter()
        .map(|r| (r[0], r[1]))
        .collect();
    let n_frames = runs.unguided.snapshots.len();
    let frames: Vec<Vec<Panel>> = (0..n_frames)
        .map(|k| frame(data, &original, runs, k))
        .collect();
    let gif = viz::render_gif(&frames, 2, 1050, 600, 4)?;
    let path = out.write("guided_vs_unguided_generation.gif", &gif)?;
    say!("wrote {} ({} frames)", path.display(), frames.len());
    let last = frames.last().expect("at least x_T and x_0");
    let path = out.write("samples_final.png", &viz::render_png(last, 2, 1050, 600)?)?;
    say!("wrote {}", path.display());
    let header = &data.meta.column_names;
    let final_points = |run: &SampleRun| original_units(data, run.final_points());
    out.write(
        "samples/unguided.csv",
        &csv(header, &final_points(&runs.unguided)),
    )?;
    for (class, run) in &runs.guided {
        let name = file_safe(&data.meta.class_names[*class]);
        out.write(
            &format!("samples/guided_{name}.csv"),
            &csv(header, &final_points(run)),
        )?;
    }
    say!("wrote {}", out.path("samples").display());
    Ok(())
}

/// Row-major 2-D points as CSV under the data's column names.
pub fn csv(header: &[String], points: &[f64]) -> Vec<u8> {
    let mut text = format!("{},{}\n", header[0], header[1]);
    for p in points.chunks_exact(2) {
        text.push_str(&format!("{},{}\n", p[0] as f32, p[1] as f32));
    }
    text.into_bytes()
}

/// One frame of the notebook's animation: unguided (left) and guided (right).
fn frame(data: &Prepared, original: &[(f64, f64)], runs: &Runs, k: usize) -> Vec<Panel> {
    let t = runs.unguided.snapshots[k].t;
    let (x_range, y_range) = data.axes();
    let names = &data.meta.column_names;
    let base = || {
        PointSeries::new("Original data", original.to_vec(), Color::BLUE)
            .alpha(0.25)
            .radius(2)
    };
    let pts = |run: &SampleRun| pairs(&original_units(data, &run.snapshots[k].points));
    let left = Scatter {
        title: format!("Unguided, t = {t}"),
        x_label: names[0].clone(),
        y_label: names[1].clone(),
        x_range,
        y_range,
        series: vec![
            base(),
            PointSeries::new("Unguided", pts(&runs.unguided), Color::GRAY)
                .alpha(0.5)
                .radius(3),
        ],
    };
    let mut right = Scatter {
        title: format!("Classifier-guided, t = {t}"),
        series: vec![base()],
        ..left.clone()
    };
    if runs.guided.is_empty() {
        right.title = format!("No labels: nothing to guide, t = {t}");
    }
    let c = data.meta.class_names.len();
    for &(class, ref run) in &runs.guided {
        let label = if data.meta.is_notebook() {
            format!("Guided c={class}")
        } else {
            format!("Guided: {}", data.meta.class_names[class])
        };
        right.series.push(
            PointSeries::new(label, pts(run), class_color(class, c))
                .alpha(0.6)
                .radius(3),
        );
    }
    vec![Panel::Scatter(left), Panel::Scatter(right)]
}

/// The `sampling` block of metrics.json. With an exact reference (the data is a known
/// Gaussian mixture) samples are compared with it; otherwise with the held-out data.
pub fn evaluate(
    args: &SampleArgs,
    data: &Prepared,
    runs: &Runs,
) -> anyhow::Result<BTreeMap<String, Value>> {
    let seed = args.seed.wrapping_add(20);
    let n = args.n;
    let mut sampling = serde_json::Map::new();
    match data.meta.truth() {
        Some(truth) => {
            let mut rng = StdRng::seed_from_u64(seed);
            let floor = energy_noise_floor(&truth, n, FLOOR_REPEATS, seed.wrapping_add(1));
            let fresh = truth.sample(n, &mut rng);
            let unguided = original_units(data, runs.unguided.final_points());
            let modes = mode_stats(&unguided, &truth);
            sampling.insert(
                "unguided".into(),
                json!({
                    "mode_balance": modes[0].fraction,
                    "modes": modes,
                    "energy_distance": energy_distance(&unguided, fresh.as_slice().expect("standard layout"), 2),
                    "energy_noise_floor": floor,
                    "reference": "exact mixture",
                }),
            );
            for &(class, ref run) in &runs.guided {
                let points = original_units(data, run.final_points());
                // Class c is component c of the mixture.
                let component = GaussianMixture::new(
                    vec![1.0],
                    vec![truth.means()[class].clone()],
                    vec![truth.covariances()[class].clone()],
                )?;
                let class_floor = energy_noise_floor(
                    &component,
                    n,
                    FLOOR_REPEATS,
                    seed.wrapping_add(2 + class as u64),
                );
                let reference = component.sample(n, &mut rng);
                sampling.insert(
                    format!("guided_{}", file_safe(&data.meta.class_names[class])),
                    json!({
                        "target_class": data.meta.class_names[class],
                        "precision": guided_precision(&points, &truth, class),
                        "modes": mode_stats(&points, &truth),
                        "energy_distance_to_class": energy_distance(&points, reference.as_slice().expect("standard layout"), 2),
                        "energy_noise_floor": class_floor,
                    }),
                );
            }
        }
        None => {
            // Compared in standardised units, so both axes weigh the same.
            let heldout: Vec<f64> = widen(&data.heldout_standardised());
            let train: Vec<f64> = widen(&data.train_standardised());
            let unguided = widen(runs.unguided.final_points());
            let floor = data_noise_floor(&train, &heldout, n, seed);
            let mut entry = json!({
                "mode_balance": null,
                "modes": null,
                "energy_distance": energy_distance(&unguided, &heldout, 2),
                "energy_noise_floor": floor,
                "reference": "held-out data (standardised units)",
            });
            let train_labels = data.labels_of(false);
            if let Some(labels) = &train_labels {
                let votes = knn_labels(&unguided, &train, labels, data.meta.class_names.len());
                let c = data.meta.class_names.len();
                let fractions: Vec<f64> = (0..c)
                    .map(|k| votes.iter().filter(|&&v| v == k).count() as f64 / votes.len() as f64)
                    .collect();
                entry["class_fractions"] = json!(fractions);
            }
            sampling.insert("unguided".into(), entry);
            if let Some(labels) = &train_labels {
                for &(class, ref run) in &runs.guided {
                    let points = widen(run.final_points());
                    let votes = knn_labels(&points, &train, labels, data.meta.class_names.len());
                    let precision =
                        votes.iter().filter(|&&v| v == class).count() as f64 / votes.len() as f64;
                    sampling.insert(
                        format!("guided_{}", file_safe(&data.meta.class_names[class])),
                        json!({
                            "target_class": data.meta.class_names[class],
                            "precision": precision,
                            "precision_rule": format!("majority of the {KNN} nearest training points"),
                        }),
                    );
                }
            }
        }
    }
    sampling.insert(
        "settings".into(),
        json!({
            "n": n,
            "scale": guidance_scale(args, data),
            "snapshot_every": args.snapshot_every,
            "variance": format!("{:?}", args.variance).to_lowercase(),
            "seed": args.seed,
        }),
    );
    let mut out = BTreeMap::new();
    out.insert("sampling".to_string(), Value::Object(sampling));
    Ok(out)
}

/// The energy distance between `n` training points (drawn without replacement) and the
/// held-out rows, over repeats: what a perfect sampler would score against the held-out
/// data, from the data alone.
fn data_noise_floor(
    train: &[f64],
    heldout: &[f64],
    n: usize,
    seed: u64,
) -> sampler::metrics::NoiseFloor {
    use rand::seq::index::sample as choose;
    let rows = train.len() / 2;
    let take = n.min(rows);
    let mut rng = StdRng::seed_from_u64(seed);
    let values: Vec<f64> = (0..FLOOR_REPEATS)
        .map(|_| {
            let idx = choose(&mut rng, rows, take);
            let subset: Vec<f64> = idx
                .iter()
                .flat_map(|i| [train[2 * i], train[2 * i + 1]])
                .collect();
            energy_distance(&subset, heldout, 2)
        })
        .collect();
    sampler::metrics::NoiseFloor::from_values(values, take)
}

/// The majority label of the `KNN` nearest training points of each point (ties: lowest class).
fn knn_labels(points: &[f64], train: &[f64], labels: &[u32], n_classes: usize) -> Vec<usize> {
    points
        .chunks_exact(2)
        .map(|p| {
            let mut best: Vec<(f64, u32)> = Vec::with_capacity(KNN + 1);
            for (q, &l) in train.chunks_exact(2).zip(labels) {
                let d = (p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2);
                if best.len() < KNN || d < best[best.len() - 1].0 {
                    let pos = best.partition_point(|b| b.0 <= d);
                    best.insert(pos, (d, l));
                    best.truncate(KNN);
                }
            }
            let mut counts = vec![0usize; n_classes];
            for (_, l) in best {
                counts[l as usize] += 1;
            }
            (0..n_classes)
                .max_by_key(|&k| (counts[k], std::cmp::Reverse(k)))
                .unwrap_or(0)
        })
        .collect()
}
