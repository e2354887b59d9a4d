//! The `train` stage: trains the denoiser ε_θ and (for labelled data) the noisy
//! classifier, saves both with the data and the recipe they came from, and evaluates
//! them — against the exact references where the data is a known Gaussian mixture
//! (sections 4–6 and 9 of the notebook).

use std::collections::BTreeMap;
use std::time::Instant;

use candle_core::{Device, Tensor};
use models::{
    accuracy_curve, accuracy_on, bayes_accuracy_closed_form, denoiser_loss_floor, train_classifier,
    train_conditional_denoiser, train_denoiser, ClassifierNet, ConditionalDenoiserNet, DenoiserNet,
    ExactMixture, NoisyClassifier, NoisyTestSet,
};
use rand::{rngs::StdRng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use schedule::NoiseSchedule;
use toy_data::GaussianMixture;
use viz::{Color, Curve, LineChart, Panel};

use crate::data::{standardise_mixture, Prepared};
use crate::error::{Context, Result};
use crate::metrics::TrainMetrics;
use crate::observer::{say, Observer};
use crate::output::{OutDir, Timings};
use crate::recipe::{Recipe, RecipeFile, Seeds, RECIPE_FORMAT};

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
/// The recipe inside a checkpoint folder.
pub const RECIPE_FILE: &str = "recipe.json";
/// The metadata key of the run id in both safetensors checkpoints.
pub const RUN_ID_KEY: &str = "run_id";

/// True when the machine has a second core for a stage to run on beside another.
pub fn two_cores() -> bool {
    std::thread::available_parallelism().is_ok_and(|p| p.get() > 1)
}

/// The trained networks and their loss curves.
pub struct Trained {
    /// ε_θ.
    pub denoiser: DenoiserNet,
    /// Its loss at every step.
    pub denoiser_losses: Vec<f32>,
    /// p_φ(y | x_t, t) and its losses, when the data has labels.
    pub classifier: Option<(ClassifierNet, Vec<f32>)>,
    /// ε_θ(x_t, t, y) for classifier-free guidance and its losses, when the data has labels.
    pub conditional: Option<(ConditionalDenoiserNet, Vec<f32>)>,
}

/// The file of the conditional denoiser in a checkpoint folder.
pub const CONDITIONAL_FILE: &str = "conditional_denoiser.safetensors";

/// Trains the networks on the recipe's data (nothing is written): the denoiser, and for
/// labelled data the classifier and the conditional denoiser. Each has its own seed and
/// runs on one thread, so with a second core the classifier trains beside the two
/// denoisers (one after the other): the same bits either way.
pub fn train_networks(
    recipe: &Recipe,
    data: &Prepared,
    obs: &dyn Observer,
    timings: &mut Timings,
) -> Result<Trained> {
    let schedule = recipe.noise_schedule()?;
    let net_config = recipe.denoiser_config();
    let denoiser_cfg = recipe.denoiser_training();
    let classifier_cfg = recipe.classifier_training(data.meta.n_train);
    denoiser_cfg.validate()?;
    classifier_cfg.validate()?;
    net_config.validate()?;
    let x0 = data.train_standardised();
    let labels = data.labels_of(false);
    let classifier_config = recipe.classifier_config(data.meta.class_names.len());
    let conditional_cfg = recipe.conditional_training();
    conditional_cfg.validate()?;
    let conditional_config = recipe.conditional_config(data.meta.class_names.len());
    let denoiser_bar = obs.bar("training denoiser", denoiser_cfg.steps as u64);
    let conditional_bar = labels.as_ref().map(|_| {
        obs.bar(
            "training conditional denoiser",
            conditional_cfg.training.steps as u64,
        )
    });
    let classifier_bar = labels.as_ref().map(|l| {
        let total = classifier_cfg.total_steps(l.len());
        obs.bar("training classifier", total as u64)
    });
    let train_den = || -> Result<(DenoiserNet, Vec<f32>, f64)> {
        let start = Instant::now();
        let (net, losses) = train_denoiser(
            &x0,
            2,
            &schedule,
            &net_config,
            &denoiser_cfg,
            &mut |step, _| denoiser_bar.set(step as u64),
        )
        .context("training the denoiser")?;
        denoiser_bar.finish();
        Ok((net, losses, start.elapsed().as_secs_f64()))
    };
    type TrainedConditional = Option<(ConditionalDenoiserNet, Vec<f32>, f64)>;
    let train_cond = || -> Result<TrainedConditional> {
        let (Some(labels), Some(bar)) = (&labels, &conditional_bar) else {
            return Ok(None);
        };
        let start = Instant::now();
        let (net, losses) = train_conditional_denoiser(
            &x0,
            2,
            labels,
            &schedule,
            &conditional_config,
            &conditional_cfg,
            &mut |step, _| bar.set(step as u64),
        )
        .context("training the conditional denoiser")?;
        bar.finish();
        Ok(Some((net, losses, start.elapsed().as_secs_f64())))
    };
    type TrainedClassifier = Option<(ClassifierNet, Vec<f32>, f64)>;
    let train_clf = || -> Result<TrainedClassifier> {
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
            &mut |step, _| bar.set(step as u64),
        )
        .context("training the classifier")?;
        bar.finish();
        Ok(Some((
            net.detached(),
            losses,
            start.elapsed().as_secs_f64(),
        )))
    };
    let (den, cond, clf) = if labels.is_some() && two_cores() {
        std::thread::scope(|scope| {
            let clf = scope.spawn(train_clf);
            let den = train_den();
            let cond = train_cond();
            (
                den,
                cond,
                clf.join()
                    .expect("the classifier's training thread panicked"),
            )
        })
    } else {
        (train_den(), train_cond(), train_clf())
    };
    let (denoiser, denoiser_losses, seconds) = den?;
    timings.record("train_denoiser", seconds);
    let classifier = match clf? {
        Some((net, losses, seconds)) => {
            timings.record("train_classifier", seconds);
            Some((net, losses))
        }
        None => None,
    };
    let conditional = match cond? {
        Some((net, losses, seconds)) => {
            timings.record("train_conditional_denoiser", seconds);
            Some((net, losses))
        }
        None => None,
    };
    Ok(Trained {
        denoiser,
        denoiser_losses,
        classifier,
        conditional,
    })
}

/// What the evaluation of the trained networks found.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Accuracy at t = 250.
    pub accuracy: Option<f64>,
    /// The Bayes-optimal accuracy at t = 250, where known.
    pub bayes: Option<f64>,
    /// Test points behind the accuracy.
    pub n_test: usize,
    /// The exact posterior's cross-entropy, where known.
    pub ce_floor: Option<f64>,
    /// The exact denoiser's loss floor, where known.
    pub denoiser_floor: Option<f64>,
    /// (t, learned accuracy, Bayes accuracy if known).
    pub curve: Vec<(usize, f64, Option<f64>)>,
    /// Test points at each t of the curve.
    pub n_curve: usize,
}

/// Evaluates the trained networks: against the exact references where the data is a
/// known mixture, else on the held-out rows.
pub fn evaluate_training(
    recipe: &Recipe,
    data: &Prepared,
    trained: &Trained,
) -> Result<Evaluation> {
    let schedule = recipe.noise_schedule()?;
    let seeds = recipe.seeds();
    let truth = match data.meta.truth() {
        Some(m) => Some(standardise_mixture(&m, &data.meta.standardizer)?),
        None => None,
    };
    let mut eval = evaluate(
        data,
        truth.as_ref(),
        &schedule,
        trained.classifier.as_ref().map(|c| &c.0),
        &seeds,
    )?;
    eval.denoiser_floor = match &truth {
        Some(m) => Some(denoiser_loss_floor(m, &schedule, FLOOR_DRAWS, seeds.test)?.mean),
        None => None,
    };
    Ok(eval)
}

/// The `train` stage: reads the data, trains, evaluates, writes the checkpoint folder
/// (`checkpoints/`: both networks, `data.json`, `data.csv`, `recipe.json`, all with one
/// run id), `training_loss.png`, `classifier_accuracy.png` and a fresh `metrics.json`.
pub fn train(
    recipe: &Recipe,
    out: &OutDir,
    obs: &dyn Observer,
    timings: &mut Timings,
) -> Result<TrainMetrics> {
    // Everything is read and checked before any work or any file.
    let data = Prepared::from_recipe(recipe, recipe.training.batch, obs)?;
    let run_id = recipe.run_id(data.digest());
    let epochs = recipe.classifier_epochs(data.meta.n_train);
    say!(
        obs,
        "data: {} ({} training rows, {} held out{})",
        data.meta.display_name(),
        data.meta.n_train,
        data.meta.n_heldout,
        if data.meta.is_labelled() {
            format!(", classes {}", data.meta.class_names.join(", "))
        } else {
            String::new()
        }
    );
    let trained = train_networks(recipe, &data, obs, timings)?;
    say!(
        obs,
        "trained: denoiser {} steps{}{}",
        trained.denoiser_losses.len(),
        match &trained.classifier {
            Some((_, l)) => format!(", classifier {} steps ({epochs} epochs)", l.len()),
            None => ", no classifier (the data has no labels)".into(),
        },
        match &trained.conditional {
            Some((_, l)) => format!(
                ", conditional denoiser {} steps (label dropout {})",
                l.len(),
                recipe.training.cond_dropout
            ),
            None => String::new(),
        }
    );

    // Evaluation, against the exact references where they exist.
    let start = Instant::now();
    let eval = evaluate_training(recipe, &data, &trained)?;
    let final_loss = tail_mean(&trained.denoiser_losses, LOSS_TAIL);
    say!(
        obs,
        "denoiser loss (mean of the last {} steps): {final_loss:.4}{}",
        LOSS_TAIL.min(trained.denoiser_losses.len()),
        eval.denoiser_floor
            .map_or(String::new(), |f| format!(" (exact floor {f:.4})"))
    );
    if let Some(acc) = eval.accuracy {
        let se = models::binomial_std_error(acc, eval.n_test);
        say!(
            obs,
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

    // Files: checkpoints with their data and recipe, figures, metrics.
    let start = Instant::now();
    save_checkpoints(out, recipe, &data, &trained, &run_id)?;
    say!(obs, "wrote {}", out.path(CHECKPOINTS).display());
    let png = loss_figure_with_conditional(
        &trained.denoiser_losses,
        trained.conditional.as_ref().map(|c| c.1.as_slice()),
        trained.classifier.as_ref().map(|c| c.1.as_slice()),
        eval.denoiser_floor,
        eval.ce_floor,
    )?;
    let path = out.write("training_loss.png", &png)?;
    say!(obs, "wrote {}", path.display());
    if !eval.curve.is_empty() {
        let path = out.write(
            "classifier_accuracy.png",
            &accuracy_figure(&eval.curve, eval.n_curve)?,
        )?;
        say!(obs, "wrote {}", path.display());
    }
    let metrics = TrainMetrics {
        accuracy_t250: eval.accuracy,
        accuracy_t250_std_error: eval
            .accuracy
            .map(|a| models::binomial_std_error(a, eval.n_test)),
        accuracy_t250_test_points: eval.n_test,
        bayes_accuracy_t250: eval.bayes,
        beta_schedule: schedule::ScheduleKind::from(recipe.schedule)
            .name()
            .to_string(),
        classes: data.meta.class_names.clone(),
        classifier_final_loss: trained
            .classifier
            .as_ref()
            .map(|c| tail_mean(&c.1, LOSS_TAIL)),
        classifier_loss_floor: eval.ce_floor,
        conditional_denoiser_final_loss: trained
            .conditional
            .as_ref()
            .map(|c| tail_mean(&c.1, LOSS_TAIL)),
        dataset: data.meta.display_name(),
        denoiser_final_loss: final_loss,
        denoiser_loss_floor: eval.denoiser_floor,
        dropped_rows: data.dropped_rows,
        run_id,
    };
    // train starts a fresh metrics.json: `sample` adds its block to it.
    let path = out.write_json(
        "metrics.json",
        &crate::Metrics {
            train: Some(metrics.clone()),
            sampling: None,
        },
    )?;
    say!(obs, "wrote {}", path.display());
    timings.record("train_outputs", start.elapsed().as_secs_f64());
    Ok(metrics)
}

/// Writes the checkpoint folder: `denoiser.safetensors`, `classifier.safetensors` and
/// `conditional_denoiser.safetensors` (both removed when the data has no labels, so
/// files from an earlier run are not picked up),
/// `data.json`, `data.csv` and `recipe.json`, every one carrying `run_id`.
pub fn save_checkpoints(
    out: &OutDir,
    recipe: &Recipe,
    data: &Prepared,
    trained: &Trained,
    run_id: &str,
) -> Result<()> {
    let tag = BTreeMap::from([(RUN_ID_KEY.to_string(), run_id.to_string())]);
    let tagged = |bytes: Vec<u8>| models::with_checkpoint_metadata(&bytes, &tag);
    out.write(
        &format!("{CHECKPOINTS}/denoiser.safetensors"),
        &tagged(trained.denoiser.to_safetensors()?)?,
    )?;
    match &trained.classifier {
        Some((net, _)) => {
            out.write(
                &format!("{CHECKPOINTS}/classifier.safetensors"),
                &tagged(net.to_safetensors()?)?,
            )?;
        }
        None => out.remove(&format!("{CHECKPOINTS}/classifier.safetensors"))?,
    }
    match &trained.conditional {
        Some((net, _)) => {
            out.write(
                &format!("{CHECKPOINTS}/{CONDITIONAL_FILE}"),
                &tagged(net.to_safetensors()?)?,
            )?;
        }
        None => out.remove(&format!("{CHECKPOINTS}/{CONDITIONAL_FILE}"))?,
    }
    data.save(out, CHECKPOINTS, run_id)?;
    out.write_json(
        &format!("{CHECKPOINTS}/{RECIPE_FILE}"),
        &RecipeFile {
            format: RECIPE_FORMAT.to_string(),
            run_id: run_id.to_string(),
            recipe: recipe.clone(),
        },
    )?;
    Ok(())
}

fn evaluate(
    data: &Prepared,
    truth: Option<&GaussianMixture>,
    schedule: &NoiseSchedule,
    classifier: Option<&ClassifierNet>,
    seeds: &Seeds,
) -> Result<Evaluation> {
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
            denoiser_floor: None,
            curve: vec![],
            n_curve: 0,
        });
    };
    // The notebook's t = 250, or T when T is shorter.
    let eval_t = EVAL_T.min(schedule.num_steps());
    match truth {
        // Fresh points from the true mixture, and the exact Bayes classifier on them.
        Some(m) => {
            let mut ts = ts;
            if !ts.contains(&eval_t) {
                ts.push(eval_t);
                ts.sort_unstable();
            }
            let curve = accuracy_curve(classifier, m, schedule, &ts, N_TEST, seeds.test)?;
            let at = curve
                .iter()
                .find(|p| p.t == eval_t)
                .expect("t = 250 is on the grid");
            // Two equal isotropic classes have a closed form; otherwise the exact
            // classifier's accuracy on the same points.
            let bayes =
                bayes_accuracy_closed_form(m, schedule, eval_t).unwrap_or(at.bayes_accuracy);
            Ok(Evaluation {
                accuracy: Some(at.accuracy),
                bayes: Some(bayes),
                n_test: N_TEST,
                ce_floor,
                denoiser_floor: None,
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
            let mut ts = ts;
            if !ts.contains(&eval_t) {
                ts.push(eval_t);
                ts.sort_unstable();
            }
            let mut curve = Vec::new();
            for &t in &ts {
                let set = noised(&x0, &labels, schedule, t, seeds.test)?;
                curve.push((t, accuracy_on(classifier, &set)?, None));
            }
            let at = curve
                .iter()
                .find(|p| p.0 == eval_t)
                .expect("t = 250 is on the grid");
            Ok(Evaluation {
                accuracy: Some(at.1),
                bayes: None,
                n_test: labels.len(),
                ce_floor,
                denoiser_floor: None,
                n_curve: labels.len(),
                curve,
            })
        }
    }
}

/// Held-out points x_0 noised to step t: x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε, seeded
/// (Ho et al. 2020, eq. 4).
fn noised(
    x0: &[f32],
    labels: &[u32],
    schedule: &NoiseSchedule,
    t: usize,
    seed: u64,
) -> Result<NoisyTestSet> {
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

/// The mean of the last `n` values (all of them when fewer).
pub fn tail_mean(values: &[f32], n: usize) -> f64 {
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
) -> Result<f64> {
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

/// `training_loss.png`: each network's loss per step, its moving average and the exact
/// floor where known.
pub fn loss_figure(
    denoiser: &[f32],
    classifier: Option<&[f32]>,
    floor: Option<f64>,
    ce_floor: Option<f64>,
) -> Result<Vec<u8>> {
    loss_figure_with_conditional(denoiser, None, classifier, floor, ce_floor)
}

/// [`loss_figure`], with the conditional denoiser's moving average (the same MSE on the
/// noise) in the denoiser's panel when there is one.
pub fn loss_figure_with_conditional(
    denoiser: &[f32],
    conditional: Option<&[f32]>,
    classifier: Option<&[f32]>,
    floor: Option<f64>,
    ce_floor: Option<f64>,
) -> Result<Vec<u8>> {
    let tail_max = |v: &[f32]| 2.5 * tail_mean(v, LOSS_TAIL).max(0.05);
    let mut denoiser_panel = loss_panel(
        "Denoiser ε_θ: MSE on the noise",
        denoiser,
        Color::BLUE,
        floor,
        tail_max(denoiser).max(1.2),
    );
    if let (Some(c), Panel::Line(chart)) = (conditional, &mut denoiser_panel) {
        // The floor is ε*(x_t, t)'s; the class lowers the conditional net's below it.
        for curve in chart
            .curves
            .iter_mut()
            .filter(|c| c.label.starts_with("exact floor"))
        {
            curve.label.push_str(" (without the class)");
        }
        let window = (c.len() / 20).clamp(1, 400);
        chart.curves.push(Curve::new(
            format!("conditional ε_θ(x_t, t, y), moving average ({window} steps)"),
            smooth(c, window),
            Color::GREEN,
        ));
    }
    let mut panels = vec![denoiser_panel];
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
    Ok(viz::render_png(&panels, panels.len(), width, 560)?)
}

/// `classifier_accuracy.png`: the learned classifier's accuracy against t, beside the
/// Bayes-optimal one where known.
pub fn accuracy_figure(curve: &[(usize, f64, Option<f64>)], n: usize) -> Result<Vec<u8>> {
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
    Ok(viz::render_png(&[panel], 1, 900, 600)?)
}
