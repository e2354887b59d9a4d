//! `cargo xtask sample`: DDPM reverse sampling, unguided and classifier-guided, from the
//! checkpoints `train` wrote (the notebook's section 8), its GIF, the samples as CSV,
//! and their metrics.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use models::{ClassifierNet, DenoiserNet, NoisyClassifier};
use sampler::metrics::{energy_distance, energy_noise_floor, guided_precision, mode_stats, widen};
use sampler::{sample, Guidance, ReverseVariance, SampleRun, SamplerConfig};
use schedule::NoiseSchedule;
use serde_json::{json, Value};
use toy_data::GaussianMixture;
use viz::{Color, Panel, PointSeries, Scatter};

use crate::flags::{default_out, SampleArgs, VarianceArg};
use crate::forward::{pairs, AXIS};
use crate::output::{OutDir, Timings};

/// Pairs of true samples behind each energy-distance noise floor.
const FLOOR_REPEATS: usize = 40;

/// The three runs of the notebook: unguided, guided to class 0, guided to class 1.
pub struct Runs {
    pub unguided: SampleRun,
    pub guided: Vec<SampleRun>,
}

pub fn run(args: &SampleArgs) -> anyhow::Result<()> {
    let out = OutDir::new(&args.out.clone().unwrap_or_else(default_out))?;
    let mut timings = Timings::default();
    let runs = generate(args, &out, &mut timings)?;
    let start = Instant::now();
    write_outputs(&out, args, &runs)?;
    timings.record("sample_outputs", start.elapsed().as_secs_f64());
    let start = Instant::now();
    let metrics = evaluate(args, &runs)?;
    out.merge_json("metrics.json", metrics)?;
    println!("wrote {}", out.path("metrics.json").display());
    timings.record("evaluate", start.elapsed().as_secs_f64());
    timings.write(&out)
}

fn checkpoint_dir(args: &SampleArgs, out: &OutDir) -> PathBuf {
    args.checkpoints
        .clone()
        .unwrap_or_else(|| out.path("checkpoints"))
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

/// Loads the networks and runs the three samplers (nothing is written).
pub fn generate(args: &SampleArgs, out: &OutDir, timings: &mut Timings) -> anyhow::Result<Runs> {
    let schedule = NoiseSchedule::notebook();
    let dir = checkpoint_dir(args, out);
    let t = Some(schedule.num_steps());
    let denoiser =
        DenoiserNet::from_safetensors(&read_checkpoint(&dir, "denoiser.safetensors")?, t)
            .with_context(|| format!("loading {}", dir.join("denoiser.safetensors").display()))?;
    let classifier =
        ClassifierNet::from_safetensors(&read_checkpoint(&dir, "classifier.safetensors")?, t)
            .with_context(|| format!("loading {}", dir.join("classifier.safetensors").display()))?;
    let config = |offset: u64| SamplerConfig {
        num_samples: args.n,
        snapshot_every: args.snapshot_every,
        variance: match args.variance {
            VarianceArg::Beta => ReverseVariance::Beta,
            VarianceArg::Posterior => ReverseVariance::Posterior,
        },
        seed: args.seed.wrapping_add(offset),
    };
    let start = Instant::now();
    let unguided = sample(&denoiser, &schedule, None, &config(10))?;
    timings.record("sample_unguided", start.elapsed().as_secs_f64());
    let mut guided = Vec::new();
    for class in 0..classifier.num_classes() as u32 {
        let start = Instant::now();
        let g = Guidance::one_class(&classifier, class, args.scale, args.n);
        guided.push(sample(
            &denoiser,
            &schedule,
            Some(&g),
            &config(11 + class as u64),
        )?);
        timings.record(
            &format!("sample_guided_{class}"),
            start.elapsed().as_secs_f64(),
        );
    }
    println!(
        "sampled {} points × {} steps: unguided and guided to each of {} classes (scale {})",
        args.n,
        schedule.num_steps(),
        guided.len(),
        args.scale
    );
    Ok(Runs { unguided, guided })
}

fn write_outputs(out: &OutDir, args: &SampleArgs, runs: &Runs) -> anyhow::Result<()> {
    let data = toy_data::two_clusters(500, args.seed);
    let original = pairs(data.points.as_slice().expect("standard layout"));
    let frames: Vec<Vec<Panel>> = (0..runs.unguided.snapshots.len())
        .map(|k| frame(&original, runs, k))
        .collect();
    let gif = viz::render_gif(&frames, 2, 1050, 600, 4)?;
    let path = out.write("guided_vs_unguided_generation.gif", &gif)?;
    println!("wrote {} ({} frames)", path.display(), frames.len());
    let last = frames.last().expect("at least x_T and x_0");
    let path = out.write("samples_final.png", &viz::render_png(last, 2, 1050, 600)?)?;
    println!("wrote {}", path.display());
    out.write("samples/unguided.csv", &csv(runs.unguided.final_points()))?;
    for (class, run) in runs.guided.iter().enumerate() {
        out.write(
            &format!("samples/guided_{class}.csv"),
            &csv(run.final_points()),
        )?;
    }
    println!("wrote {}", out.path("samples").display());
    Ok(())
}

/// Row-major 2-D points as CSV with the header `x,y`.
pub fn csv(points: &[f32]) -> Vec<u8> {
    let mut text = String::from("x,y\n");
    for p in points.chunks_exact(2) {
        text.push_str(&format!("{},{}\n", p[0], p[1]));
    }
    text.into_bytes()
}

/// One frame of the notebook's animation: unguided (left) and guided (right).
fn frame(original: &[(f64, f64)], runs: &Runs, k: usize) -> Vec<Panel> {
    let t = runs.unguided.snapshots[k].t;
    let base = || {
        PointSeries::new("Original data", original.to_vec(), Color::BLUE)
            .alpha(0.25)
            .radius(2)
    };
    let left = Scatter {
        title: format!("Unguided, t = {t}"),
        x_label: "x₁".into(),
        y_label: "x₂".into(),
        x_range: AXIS,
        y_range: AXIS,
        series: vec![
            base(),
            PointSeries::new(
                "Unguided",
                pairs(&runs.unguided.snapshots[k].points),
                Color::GRAY,
            )
            .alpha(0.5)
            .radius(3),
        ],
    };
    let mut right = Scatter {
        title: format!("Classifier-guided, t = {t}"),
        series: vec![base()],
        ..left.clone()
    };
    for (class, run) in runs.guided.iter().enumerate() {
        let color = [Color::RED, Color::GREEN]
            .get(class)
            .copied()
            .unwrap_or(viz::palette(class));
        right.series.push(
            PointSeries::new(
                format!("Guided c={class}"),
                pairs(&run.snapshots[k].points),
                color,
            )
            .alpha(0.6)
            .radius(3),
        );
    }
    vec![Panel::Scatter(left), Panel::Scatter(right)]
}

/// The `sampling` block of metrics.json: quality of each run against the true mixture.
pub fn evaluate(args: &SampleArgs, runs: &Runs) -> anyhow::Result<BTreeMap<String, Value>> {
    let truth = toy_data::two_clusters_mixture();
    let seed = args.seed.wrapping_add(20);
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
    let n = args.n;
    let floor = energy_noise_floor(&truth, n, FLOOR_REPEATS, seed.wrapping_add(1));
    let fresh = truth.sample(n, &mut rng);
    let unguided = widen(runs.unguided.final_points());
    let mut sampling = serde_json::Map::new();
    sampling.insert(
        "unguided".into(),
        json!({
            "modes": mode_stats(&unguided, &truth),
            "mode_balance": mode_stats(&unguided, &truth)[0].fraction,
            "energy_distance": energy_distance(&unguided, fresh.as_slice().expect("standard"), 2),
            "energy_noise_floor": floor,
        }),
    );
    for (class, run) in runs.guided.iter().enumerate() {
        let points = widen(run.final_points());
        // The target is class `class` alone: component `class` of the mixture.
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
            format!("guided_{class}"),
            json!({
                "target_class": class,
                "precision": guided_precision(&points, &truth, class),
                "modes": mode_stats(&points, &truth),
                "energy_distance_to_class": energy_distance(&points, reference.as_slice().expect("standard"), 2),
                "energy_noise_floor": class_floor,
            }),
        );
    }
    sampling.insert(
        "settings".into(),
        json!({
            "n": n,
            "scale": args.scale,
            "snapshot_every": args.snapshot_every,
            "variance": format!("{:?}", args.variance).to_lowercase(),
            "seed": args.seed,
        }),
    );
    let mut out = BTreeMap::new();
    out.insert("sampling".to_string(), Value::Object(sampling));
    Ok(out)
}
