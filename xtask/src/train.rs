//! `cargo xtask train`: trains the denoiser ε_θ and (for labelled data) the noisy
//! classifier, saves both with the data they were trained on, and evaluates them —
//! against the exact references where the data is a known Gaussian mixture
//! (sections 4–6 and 9 of the notebook).

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Context;
use candle_core::{Device, Tensor};
use models::{
    accuracy_curve, accuracy_on, bayes_accuracy_closed_form, denoiser_loss_floor, train_classifier,
    train_denoiser, Activation, ClassifierConfig, ClassifierNet, ClassifierTraining,
    DenoiserConfig, DenoiserNet, DenoiserTraining, ExactMixture, LrSchedule, NoisyClassifier,
    NoisyTestSet, TimeEncoding,
};
use rand::{rngs::StdRng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use schedule::NoiseSchedule;
use serde_json::json;
use toy_data::GaussianMixture;
use viz::{Color, Curve, LineChart, Panel};

use crate::console::say;
use crate::data::{standardise_mixture, Prepared};
use crate::flags::{default_out, ActivationArg, NetArgs, TimeInputArg, TrainArgs};
use crate::output::{OutDir, Timings};
use crate::progress;

/// The notebook evaluates at t = 250.
pub const EVAL_T: usize = 250;
/// Test points for every accuracy against an exact reference (binomial SE ≈ 0.002).
pub const N_TEST: usize = 10_000;
/// The final losses are means over this many last steps (one batch is noisy).
pub const LOSS_TAIL: usize = 200;
/// Monte Carlo draws for the exact denoiser-loss floor (SE ≈ 0.001).
const FLOOR_DRAWS: usize = 200_000;
/// The checkpoint folder inside the output folder.
pub const CHECKPOINTS: &str = "checkpoints";

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

/// The denoiser for a data set: the flags, else the notebook's network for its own data
/// and a wider, deeper, smoother one with a sinusoidal time input for everything else.
pub fn denoiser_config(net: &NetArgs, notebook: bool, num_steps: usize) -> DenoiserConfig {
    let activation = net.activation.unwrap_or(if notebook {
        ActivationArg::Relu
    } else {
        ActivationArg::Silu
    });
    let time = net.time_input.unwrap_or(if notebook {
        TimeInputArg::Scaled
    } else {
        TimeInputArg::Sinusoidal
    });
    DenoiserConfig {
        dim: 2,
        hidden_width: net.width.unwrap_or(128),
        hidden_layers: net.depth.unwrap_or(if notebook { 2 } else { 3 }),
        num_steps,
        activation: match activation {
            ActivationArg::Relu => Activation::Relu,
            ActivationArg::Silu => Activation::Silu,
        },
        time_encoding: match time {
            TimeInputArg::Scaled => TimeEncoding::Scaled,
            TimeInputArg::Sinusoidal => TimeEncoding::Sinusoidal,
        },
    }
}

pub fn run(args: &TrainArgs) -> anyhow::Result<()> {
    let out = OutDir::new(&args.out.clone().unwrap_or_else(default_out))?;
    let mut timings = Timings::default();
    let schedule = NoiseSchedule::notebook();
    let seeds = Seeds::from(args.seed);

    // Everything is read and checked before any work or any file.
    let data = Prepared::from_args(&args.data, seeds.data, args.batch)?;
    let notebook = data.meta.is_notebook();
    let net_config = denoiser_config(&args.net, notebook, schedule.num_steps());
    let denoiser_cfg = DenoiserTraining {
        steps: args.steps.unwrap_or(if notebook { 2000 } else { 20_000 }),
        batch_size: args.batch,
        learning_rate: args.lr,
        seed: seeds.denoiser,
        // The notebook's constant rate for its own data; a cosine decay elsewhere lets
        // the final weights settle (sharper samples on thin shapes like moons and spirals).
        lr_schedule: if notebook {
            LrSchedule::Constant
        } else {
            LrSchedule::Cosine
        },
    };
    let x0 = data.train_standardised();
    let n_train = data.meta.n_train;
    let default_epochs = if notebook {
        1000
    } else {
        // About the notebook's 8,000 classifier steps, whatever the data size.
        8000usize.div_ceil(n_train.div_ceil(args.batch)).max(1)
    };
    let classifier_cfg = ClassifierTraining {
        epochs: args.epochs.unwrap_or(default_epochs),
        batch_size: args.batch,
        learning_rate: args.lr,
        seed: seeds.classifier,
    };
    denoiser_cfg.validate()?;
    classifier_cfg.validate()?;
    net_config.validate()?;
    say!(
        "data: {} ({} training rows, {} held out{})",
        data.meta.display_name(),
        n_train,
        data.meta.n_heldout,
        if data.meta.is_labelled() {
            format!(", classes {}", data.meta.class_names.join(", "))
        } else {
            String::new()
        }
    );

    // 1–2. The denoiser ε_θ(x_t, t) and, when there are labels to learn, the classifier
    // p_φ(y | x_t, t). Each has its own seed and runs on one thread, so with a second
    // core they train side by side: the same bits either way.
    let labels = data.labels_of(false);
    let classifier_config = ClassifierConfig {
        num_classes: data.meta.class_names.len(),
        ..ClassifierConfig::default()
    };
    let bars = indicatif::MultiProgress::new();
    let denoiser_bar = progress::bar_in(&bars, denoiser_cfg.steps as u64, "training denoiser");
    let classifier_bar = labels.as_ref().map(|l| {
        let total = classifier_cfg.total_steps(l.len());
        progress::bar_in(&bars, total as u64, "training classifier")
    });
    let train_den = || -> anyhow::Result<(DenoiserNet, Vec<f32>, f64)> {
        let start = Instant::now();
        let (net, losses) = train_denoiser(
            &x0,
            2,
            &schedule,
            &net_config,
            &denoiser_cfg,
            &mut |step, _| denoiser_bar.set_position(step as u64),
        )
        .context("training the denoiser")?;
        denoiser_bar.finish_and_clear();
        Ok((net, losses, start.elapsed().as_secs_f64()))
    };
    type Trained = Option<(ClassifierNet, Vec<f32>, f64)>;
    let train_clf = || -> anyhow::Result<Trained> {
        let (Some(labels), Some(bar)) = (&labels, &classifier_bar) else {
            return Ok(None);
        };
        let start = Instant::now();
        let (net, losses) = train_classifier(
            &x0,
            2,
            labels,
            &schedule,
            &classifier_config,
            &classifier_cfg,
            &mut |step, _| bar.set_position(step as u64),
        )
        .context("training the classifier")?;
        bar.finish_and_clear();
        Ok(Some((
            net.detached(),
            losses,
            start.elapsed().as_secs_f64(),
        )))
    };
    let (den, clf) = if labels.is_some() && crate::console::two_cores() {
        std::thread::scope(|scope| {
            let clf = scope.spawn(train_clf);
            let den = train_den();
            (
                den,
                clf.join()
                    .expect("the classifier's training thread panicked"),
            )
        })
    } else {
        (train_den(), train_clf())
    };
    let (denoiser, denoiser_losses, seconds) = den?;
    timings.record("train_denoiser", seconds);
    let classifier: Option<(ClassifierNet, Vec<f32>)> = match clf? {
        Some((net, losses, seconds)) => {
            timings.record("train_classifier", seconds);
            Some((net, losses))
        }
        None => None,
    };
    say!(
        "trained: denoiser {} steps{}",
        denoiser_losses.len(),
        match &classifier {
            Some((_, l)) => format!(
                ", classifier {} steps ({} epochs)",
                l.len(),
                classifier_cfg.epochs
            ),
            None => ", no classifier (the data has no labels)".into(),
        }
    );

    // 3. Evaluation, against the exact references where they exist.
    let start = Instant::now();
    let truth = match data.meta.truth() {
        Some(m) => Some(standardise_mixture(&m, &data.meta.standardizer)?),
        None => None,
    };
    let eval = evaluate(
        &data,
        truth.as_ref(),
        &schedule,
        classifier.as_ref().map(|c| &c.0),
        &seeds,
    )?;
    let final_loss = tail_mean(&denoiser_losses, LOSS_TAIL);
    let floor = match &truth {
        Some(m) => Some(denoiser_loss_floor(m, &schedule, FLOOR_DRAWS, seeds.test)?.mean),
        None => None,
    };
    say!(
        "denoiser loss (mean of the last {} steps): {final_loss:.4}{}",
        LOSS_TAIL.min(denoiser_losses.len()),
        floor.map_or(String::new(), |f| format!(" (exact floor {f:.4})"))
    );
    if let Some(acc) = eval.accuracy {
        let se = models::binomial_std_error(acc, eval.n_test);
        say!(
            "accuracy at t={EVAL_T}: {:.2}% ± {:.2} ({}{} test points)",
            100.0 * acc,
            100.0 * se,
            eval.bayes.map_or(String::new(), |b| format!(
                "Bayes-optimal {:.2}%, ",
                100.0 * b
            )),
            eval.n_test
        );
    }
    timings.record("evaluate_training", start.elapsed().as_secs_f64());

    // 4. Files: checkpoints with their data, figures, metrics.
    let start = Instant::now();
    out.write(
        &format!("{CHECKPOINTS}/denoiser.safetensors"),
        &denoiser.to_safetensors()?,
    )?;
    match &classifier {
        Some((net, _)) => {
            out.write(
                &format!("{CHECKPOINTS}/classifier.safetensors"),
                &net.to_safetensors()?,
            )?;
        }
        // A classifier from an earlier run on other data must not be picked up.
        None => out.remove(&format!("{CHECKPOINTS}/classifier.safetensors"))?,
    }
    data.save(&out, CHECKPOINTS)?;
    say!("wrote {}", out.path(CHECKPOINTS).display());
    let ce_floor = eval.ce_floor;
    loss_figure(
        &out,
        &denoiser_losses,
        classifier.as_ref().map(|c| c.1.as_slice()),
        floor,
        ce_floor,
    )?;
    if !eval.curve.is_empty() {
        accuracy_figure(&out, &eval.curve, eval.n_curve)?;
    }
    let mut metrics: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    metrics.insert("dataset".into(), json!(data.meta.display_name()));
    metrics.insert("classes".into(), json!(data.meta.class_names));
    metrics.insert("dropped_rows".into(), json!(data.dropped_rows));
    metrics.insert("accuracy_t250".into(), json!(eval.accuracy));
    metrics.insert(
        "accuracy_t250_std_error".into(),
        json!(eval
            .accuracy
            .map(|a| models::binomial_std_error(a, eval.n_test))),
    );
    metrics.insert("accuracy_t250_test_points".into(), json!(eval.n_test));
    metrics.insert("bayes_accuracy_t250".into(), json!(eval.bayes));
    metrics.insert("denoiser_final_loss".into(), json!(final_loss));
    metrics.insert("denoiser_loss_floor".into(), json!(floor));
    metrics.insert(
        "classifier_final_loss".into(),
        json!(classifier.as_ref().map(|c| tail_mean(&c.1, LOSS_TAIL))),
    );
    metrics.insert("classifier_loss_floor".into(), json!(ce_floor));
    // train starts a fresh metrics.json: later stages add their fields to it.
    let path = out.write_json("metrics.json", &metrics)?;
    say!("wrote {}", path.display());
    timings.record("train_outputs", start.elapsed().as_secs_f64());
    timings.write(&out)
}

/// What the evaluation of the trained networks found.
struct Evaluation {
    accuracy: Option<f64>,
    bayes: Option<f64>,
    n_test: usize,
    ce_floor: Option<f64>,
    /// (t, learned accuracy, Bayes accuracy if known).
    curve: Vec<(usize, f64, Option<f64>)>,
    n_curve: usize,
}

fn evaluate(
    data: &Prepared,
    truth: Option<&GaussianMixture>,
    schedule: &NoiseSchedule,
    classifier: Option<&ClassifierNet>,
    seeds: &Seeds,
) -> anyhow::Result<Evaluation> {
    let ts: Vec<usize> = std::iter::once(1)
        .chain((25..=schedule.num_steps()).step_by(25))
        .collect();
    let ce_floor = match truth {
        Some(m) if data.meta.is_labelled() => Some(exact_cross_entropy(
            &ExactMixture::new(m, schedule)?,
            m,
            schedule,
            seeds.test,
        )?),
        _ => None,
    };
    let Some(classifier) = classifier else {
        return Ok(Evaluation {
            accuracy: None,
            bayes: None,
            n_test: 0,
            ce_floor,
            curve: vec![],
            n_curve: 0,
        });
    };
    match truth {
        // Fresh points from the true mixture, and the exact Bayes classifier on them.
        Some(m) => {
            let curve = accuracy_curve(classifier, m, schedule, &ts, N_TEST, seeds.test)?;
            let at = curve
                .iter()
                .find(|p| p.t == EVAL_T)
                .expect("t = 250 is on the grid");
            // Two equal isotropic classes have a closed form; otherwise the exact
            // classifier's accuracy on the same points.
            let bayes =
                bayes_accuracy_closed_form(m, schedule, EVAL_T).unwrap_or(at.bayes_accuracy);
            Ok(Evaluation {
                accuracy: Some(at.accuracy),
                bayes: Some(bayes),
                n_test: N_TEST,
                ce_floor,
                curve: curve
                    .iter()
                    .map(|p| (p.t, p.accuracy, Some(p.bayes_accuracy)))
                    .collect(),
                n_curve: N_TEST,
            })
        }
        // The held-out rows, noised with seeded noise.
        None => {
            let x0 = data.heldout_standardised();
            let labels = data.labels_of(true).unwrap_or_default();
            let mut curve = Vec::new();
            for &t in &ts {
                let set = noised(&x0, &labels, schedule, t, seeds.test)?;
                curve.push((t, accuracy_on(classifier, &set)?, None));
            }
            let at = curve
                .iter()
                .find(|p| p.0 == EVAL_T)
                .expect("t = 250 is on the grid");
            Ok(Evaluation {
                accuracy: Some(at.1),
                bayes: None,
                n_test: labels.len(),
                ce_floor,
                n_curve: labels.len(),
                curve,
            })
        }
    }
}

/// Held-out points x_0 noised to step t: x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε, seeded.
fn noised(
    x0: &[f32],
    labels: &[u32],
    schedule: &NoiseSchedule,
    t: usize,
    seed: u64,
) -> anyhow::Result<NoisyTestSet> {
    let mut rng = StdRng::seed_from_u64(seed);
    let (a, b) = (
        schedule.sqrt_alpha_bar(t),
        schedule.sqrt_one_minus_alpha_bar(t),
    );
    let points = x0
        .iter()
        .map(|&x| {
            let e: f64 = StandardNormal.sample(&mut rng);
            (a * x as f64 + b * e) as f32
        })
        .collect();
    Ok(NoisyTestSet {
        t,
        dim: 2,
        points,
        labels: labels.to_vec(),
    })
}

fn tail_mean(values: &[f32], n: usize) -> f64 {
    let tail = &values[values.len().saturating_sub(n)..];
    tail.iter().map(|&v| v as f64).sum::<f64>() / tail.len().max(1) as f64
}

/// E_{t, x_0, ε}[−log p*(y | x_t)] under the exact posterior: the lowest cross-entropy
/// any classifier can reach on this data (Monte Carlo, 50 points at each of the T steps).
fn exact_cross_entropy(
    exact: &ExactMixture,
    truth: &GaussianMixture,
    schedule: &NoiseSchedule,
    seed: u64,
) -> anyhow::Result<f64> {
    let classifier = exact.classifier();
    let (mut total, mut count) = (0.0, 0usize);
    for t in 1..=schedule.num_steps() {
        let set = NoisyTestSet::new(truth, schedule, t, 50, seed.wrapping_add(t as u64))?;
        let x = Tensor::from_slice(&set.points, (set.len(), set.dim), &Device::Cpu)?;
        let log_p = classifier.log_probs(&x, t)?.to_vec2::<f32>()?;
        for (row, &label) in log_p.iter().zip(&set.labels) {
            total -= row[label as usize] as f64;
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

fn loss_panel(title: &str, losses: &[f32], color: Color, floor: Option<f64>, y_max: f64) -> Panel {
    let window = (losses.len() / 20).clamp(1, 400);
    let mut curves = vec![
        Curve::new(
            "loss per step",
            losses
                .iter()
                .enumerate()
                .map(|(i, &l)| ((i + 1) as f64, l as f64))
                .collect(),
            color.over(Color::WHITE, 0.3),
        )
        .width(1),
        Curve::new(
            format!("moving average ({window} steps)"),
            smooth(losses, window),
            color,
        ),
    ];
    if let Some(f) = floor {
        curves.push(
            Curve::new(
                format!("exact floor {f:.3}"),
                vec![(1.0, f), (losses.len() as f64, f)],
                Color::BLACK,
            )
            .dashed(),
        );
    }
    Panel::Line(LineChart {
        title: title.into(),
        x_label: "training step".into(),
        y_label: "loss".into(),
        curves,
        y_range: Some((0.0, y_max)),
        ..LineChart::default()
    })
}

fn loss_figure(
    out: &OutDir,
    denoiser: &[f32],
    classifier: Option<&[f32]>,
    floor: Option<f64>,
    ce_floor: Option<f64>,
) -> anyhow::Result<()> {
    let tail_max = |v: &[f32]| 2.5 * tail_mean(v, LOSS_TAIL).max(0.05);
    let mut panels = vec![loss_panel(
        "Denoiser ε_θ: MSE on the noise",
        denoiser,
        Color::BLUE,
        floor,
        tail_max(denoiser).max(1.2),
    )];
    if let Some(c) = classifier {
        panels.push(loss_panel(
            "Classifier p(y | x_t, t): cross-entropy",
            c,
            Color::ORANGE,
            ce_floor,
            tail_max(c).max(0.8),
        ));
    }
    let width = 700 * panels.len() as u32;
    let png = viz::render_png(&panels, panels.len(), width, 560)?;
    let path = out.write("training_loss.png", &png)?;
    say!("wrote {}", path.display());
    Ok(())
}

fn accuracy_figure(
    out: &OutDir,
    curve: &[(usize, f64, Option<f64>)],
    n: usize,
) -> anyhow::Result<()> {
    let learned = curve.iter().map(|p| (p.0 as f64, p.1)).collect();
    let mut curves = Vec::new();
    if curve.iter().all(|p| p.2.is_some()) {
        let bayes = curve
            .iter()
            .map(|p| (p.0 as f64, p.2.unwrap_or(0.0)))
            .collect();
        curves.push(Curve::new("Bayes-optimal (exact posterior)", bayes, Color::BLACK).dashed());
    }
    curves.push(Curve::new("learned classifier", learned, Color::GREEN));
    let panel = Panel::Line(LineChart {
        title: format!("Classifier accuracy on noisy points ({n} per t)"),
        x_label: "diffusion step t".into(),
        y_label: "accuracy".into(),
        curves,
        y_range: Some((0.0, 1.02)),
        ..LineChart::default()
    });
    let path = out.write(
        "classifier_accuracy.png",
        &viz::render_png(&[panel], 1, 900, 600)?,
    )?;
    say!("wrote {}", path.display());
    Ok(())
}
