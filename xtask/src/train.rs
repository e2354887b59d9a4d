//! `cargo xtask train`: trains the denoiser ε_θ and the noisy classifier with the
//! notebook's settings, saves both checkpoints, and evaluates them against the exact
//! references (sections 4–6 and 9 of the notebook).

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Context;
use models::{
    accuracy_curve, bayes_accuracy_closed_form, classifier_accuracy, denoiser_loss_floor,
    train_classifier, train_denoiser, ClassifierConfig, ClassifierTraining, DenoiserConfig,
    DenoiserTraining, ExactMixture,
};
use schedule::NoiseSchedule;
use serde_json::json;
use viz::{Color, Curve, LineChart, Panel};

use crate::flags::{default_out, TrainArgs};
use crate::output::{OutDir, Timings};
use crate::progress;

/// The notebook evaluates at t = 250.
pub const EVAL_T: usize = 250;
/// Test points for every accuracy (binomial SE ≈ 0.002 at 95%).
pub const N_TEST: usize = 10_000;
/// The final denoiser loss is the mean over this many last steps (one batch is noisy).
pub const LOSS_TAIL: usize = 200;
/// Monte Carlo draws for the exact denoiser-loss floor (SE ≈ 0.001).
const FLOOR_DRAWS: usize = 200_000;

/// Seeds of the stages, all derived from `--seed`.
pub struct Seeds {
    pub data: u64,
    pub denoiser: u64,
    pub classifier: u64,
    pub test: u64,
}

impl Seeds {
    pub fn from(seed: u64) -> Self {
        Self {
            data: seed,
            denoiser: seed.wrapping_add(1),
            classifier: seed.wrapping_add(2),
            test: seed.wrapping_add(3),
        }
    }
}

pub fn run(args: &TrainArgs) -> anyhow::Result<()> {
    let out = OutDir::new(&args.out.clone().unwrap_or_else(default_out))?;
    let mut timings = Timings::default();
    let schedule = NoiseSchedule::notebook();
    let seeds = Seeds::from(args.seed);
    let denoiser_cfg = DenoiserTraining {
        steps: args.steps,
        batch_size: args.batch,
        learning_rate: args.lr,
        seed: seeds.denoiser,
    };
    let classifier_cfg = ClassifierTraining {
        epochs: args.epochs,
        batch_size: args.batch,
        learning_rate: args.lr,
        seed: seeds.classifier,
    };
    // Check every setting before any work or any file.
    denoiser_cfg.validate()?;
    classifier_cfg.validate()?;

    let truth = toy_data::two_clusters_mixture();
    let data = toy_data::two_clusters(500, seeds.data);
    let x0: Vec<f32> = data.points.iter().map(|&v| v as f32).collect();
    let labels: Vec<u32> = data.labels.iter().map(|&l| l as u32).collect();

    // 1. The denoiser ε_θ(x_t, t).
    let start = Instant::now();
    let bar = progress::bar(denoiser_cfg.steps as u64, "training denoiser");
    let (denoiser, denoiser_losses) = train_denoiser(
        &x0,
        2,
        &schedule,
        &DenoiserConfig::default(),
        &denoiser_cfg,
        &mut |step, _| bar.set_position(step as u64),
    )
    .context("training the denoiser")?;
    bar.finish_and_clear();
    timings.record("train_denoiser", start.elapsed().as_secs_f64());

    // 2. The classifier p_φ(y | x_t, t).
    let start = Instant::now();
    let total = classifier_cfg.total_steps(labels.len());
    let bar = progress::bar(total as u64, "training classifier");
    let (classifier, classifier_losses) = train_classifier(
        &x0,
        2,
        &labels,
        &schedule,
        &ClassifierConfig::default(),
        &classifier_cfg,
        &mut |step, _| bar.set_position(step as u64),
    )
    .context("training the classifier")?;
    bar.finish_and_clear();
    timings.record("train_classifier", start.elapsed().as_secs_f64());
    println!(
        "trained: denoiser {} steps, classifier {} steps ({} epochs)",
        denoiser_losses.len(),
        classifier_losses.len(),
        classifier_cfg.epochs
    );

    // 3. Evaluation against the exact references.
    let start = Instant::now();
    let classifier = classifier.detached();
    let accuracy = classifier_accuracy(&classifier, &truth, &schedule, EVAL_T, N_TEST, seeds.test)?;
    let bayes = bayes_accuracy_closed_form(&truth, &schedule, EVAL_T)?;
    let se = models::binomial_std_error(accuracy, N_TEST);
    println!(
        "accuracy at t={EVAL_T}: {:.2}% ± {:.2} (Bayes-optimal {:.2}%, {N_TEST} test points)",
        100.0 * accuracy,
        100.0 * se,
        100.0 * bayes
    );
    let floor = denoiser_loss_floor(&truth, &schedule, FLOOR_DRAWS, seeds.test)?;
    let tail = &denoiser_losses[denoiser_losses.len().saturating_sub(LOSS_TAIL)..];
    let final_loss = tail.iter().map(|&v| v as f64).sum::<f64>() / tail.len() as f64;
    println!(
        "denoiser loss (mean of the last {} steps): {final_loss:.4} (exact floor {:.4} ± {:.4})",
        tail.len(),
        floor.mean,
        floor.std_error
    );
    let ts: Vec<usize> = std::iter::once(1)
        .chain((25..=schedule.num_steps()).step_by(25))
        .collect();
    let curve = accuracy_curve(&classifier, &truth, &schedule, &ts, N_TEST, seeds.test)?;
    let exact = ExactMixture::new(&truth, &schedule)?;
    let ce_floor = exact_cross_entropy(&exact, &truth, &schedule, seeds.test)?;
    timings.record("evaluate_training", start.elapsed().as_secs_f64());

    // 4. Files: checkpoints, figures, metrics.
    let start = Instant::now();
    out.write(
        "checkpoints/denoiser.safetensors",
        &denoiser.to_safetensors()?,
    )?;
    out.write(
        "checkpoints/classifier.safetensors",
        &classifier.to_safetensors()?,
    )?;
    println!("wrote {}", out.path("checkpoints").display());
    loss_figure(
        &out,
        &denoiser_losses,
        &classifier_losses,
        floor.mean,
        ce_floor,
    )?;
    accuracy_figure(&out, &curve)?;
    let mut metrics = BTreeMap::new();
    metrics.insert("accuracy_t250".into(), json!(accuracy));
    metrics.insert("accuracy_t250_std_error".into(), json!(se));
    metrics.insert("bayes_accuracy_t250".into(), json!(bayes));
    metrics.insert("denoiser_final_loss".into(), json!(final_loss));
    metrics.insert("denoiser_loss_floor".into(), json!(floor.mean));
    metrics.insert("classifier_loss_floor".into(), json!(ce_floor));
    metrics.insert(
        "classifier_final_loss".into(),
        json!(tail_mean(&classifier_losses, LOSS_TAIL)),
    );
    let path = out.merge_json("metrics.json", metrics)?;
    println!("wrote {}", path.display());
    timings.record("train_outputs", start.elapsed().as_secs_f64());
    timings.write(&out)
}

fn tail_mean(values: &[f32], n: usize) -> f64 {
    let tail = &values[values.len().saturating_sub(n)..];
    tail.iter().map(|&v| v as f64).sum::<f64>() / tail.len().max(1) as f64
}

/// E_{t, x_0, ε}[−log p*(y | x_t)] under the exact posterior: the lowest cross-entropy
/// any classifier can reach on this data (Monte Carlo, 50 points at each of the T steps).
fn exact_cross_entropy(
    exact: &ExactMixture,
    truth: &toy_data::GaussianMixture,
    schedule: &NoiseSchedule,
    seed: u64,
) -> anyhow::Result<f64> {
    let classifier = exact.classifier();
    let (mut total, mut count) = (0.0, 0usize);
    for t in 1..=schedule.num_steps() {
        let set = models::NoisyTestSet::new(truth, schedule, t, 50, seed.wrapping_add(t as u64))?;
        for (i, &label) in set.labels.iter().enumerate() {
            let x: Vec<f64> = set.points[i * set.dim..(i + 1) * set.dim]
                .iter()
                .map(|&v| v as f64)
                .collect();
            total -= classifier.log_probs_host(&x, t)?[label as usize];
            count += 1;
        }
    }
    Ok(total / count as f64)
}

/// Moving average over `window` steps (shorter at the start).
pub fn smooth(values: &[f32], window: usize) -> Vec<(f64, f64)> {
    let mut sum = 0.0;
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            sum += v as f64;
            if i >= window {
                sum -= values[i - window] as f64;
            }
            let n = (i + 1).min(window);
            ((i + 1) as f64, sum / n as f64)
        })
        .collect()
}

fn loss_figure(
    out: &OutDir,
    denoiser: &[f32],
    classifier: &[f32],
    floor: f64,
    ce_floor: f64,
) -> anyhow::Result<()> {
    let raw = |v: &[f32], color: Color| {
        Curve::new(
            "loss per step",
            v.iter()
                .enumerate()
                .map(|(i, &l)| ((i + 1) as f64, l as f64))
                .collect(),
            color.over(Color::WHITE, 0.3),
        )
        .width(1)
    };
    let line = |label: String, y: f64, n: usize| {
        Curve::new(label, vec![(1.0, y), (n as f64, y)], Color::BLACK).dashed()
    };
    let panels = vec![
        Panel::Line(LineChart {
            title: "Denoiser ε_θ: MSE on the noise".into(),
            x_label: "training step".into(),
            y_label: "loss".into(),
            curves: vec![
                raw(denoiser, Color::BLUE),
                Curve::new(
                    "moving average (100 steps)",
                    smooth(denoiser, 100),
                    Color::BLUE,
                ),
                line(format!("exact floor {floor:.3}"), floor, denoiser.len()),
            ],
            y_range: Some((0.0, 1.2)),
            ..LineChart::default()
        }),
        Panel::Line(LineChart {
            title: "Classifier p(y | x_t, t): cross-entropy".into(),
            x_label: "training step".into(),
            y_label: "loss".into(),
            curves: vec![
                raw(classifier, Color::ORANGE),
                Curve::new(
                    "moving average (400 steps)",
                    smooth(classifier, 400),
                    Color::ORANGE,
                ),
                line(
                    format!("exact floor {ce_floor:.3}"),
                    ce_floor,
                    classifier.len(),
                ),
            ],
            y_range: Some((0.0, 0.8)),
            ..LineChart::default()
        }),
    ];
    let path = out.write(
        "training_loss.png",
        &viz::render_png(&panels, 2, 1400, 560)?,
    )?;
    println!("wrote {}", path.display());
    Ok(())
}

fn accuracy_figure(out: &OutDir, curve: &[models::AccuracyPoint]) -> anyhow::Result<()> {
    let learned = curve.iter().map(|p| (p.t as f64, p.accuracy)).collect();
    let bayes = curve
        .iter()
        .map(|p| (p.t as f64, p.bayes_accuracy))
        .collect();
    let panel = Panel::Line(LineChart {
        title: format!("Classifier accuracy on noisy points ({N_TEST} per t)"),
        x_label: "diffusion step t".into(),
        y_label: "accuracy".into(),
        curves: vec![
            Curve::new("Bayes-optimal (exact posterior)", bayes, Color::BLACK).dashed(),
            Curve::new("learned classifier", learned, Color::GREEN),
        ],
        y_range: Some((0.45, 1.02)),
        ..LineChart::default()
    });
    let path = out.write(
        "classifier_accuracy.png",
        &viz::render_png(&[panel], 1, 900, 600)?,
    )?;
    println!("wrote {}", path.display());
    Ok(())
}
